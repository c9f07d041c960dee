package mapping

import (
	"slices"
	"strings"
)

// Reversals are the reasons an order filter can mark as a reversal, each
// with its default DispositionCode from impact's list.
var Reversals = map[string]string{
	"cancelled": "ORDER_ERROR",
	"returned":  "ITEM_RETURNED",
	"test":      "TEST_ACTION",
	"fraud":     "CONS_FRAUD",
}

// DispositionCodes are the codes impact takes for a reversal (DELETE
// /Actions).
var DispositionCodes = []string{
	"REJECTED", "CONS_INFO_INVALID", "CONS_ERROR", "CONS_FRAUD", "ITEM_RETURNED",
	"ITEM_OUT_OF_STOCK", "ORDER_ERROR", "PUB_ACT_DISPUTE", "NOT_COMPLIANCE_TERMS",
	"MP_RETURNED", "OTHER", "CREDITED_DIFFERENT_MP", "ADV_ACT_DISPUTE", "TEST_ACTION",
}

// reversalOf checks the filter's reversal and disposition and returns the
// DispositionCode of its reversal ("" when it marks none).
func reversalOf(key string, f Filter) (string, error) {
	if f.Reversal == "" {
		if f.Disposition != "" {
			return "", errAt(key+".disposition", "only with reversal")
		}
		return "", nil
	}
	def, ok := Reversals[f.Reversal]
	switch {
	case !ok:
		return "", errAt(key+".reversal", "%q is not one of cancelled, returned, test, fraud", f.Reversal)
	case f.Skip != "order":
		return "", errAt(key+".reversal", "only an order filter (skip: order) reverses an order")
	case f.Disposition == "":
		return def, nil
	case !slices.Contains(DispositionCodes, f.Disposition):
		return "", errAt(key+".disposition", "%q is not one of impact's codes: %s", f.Disposition, strings.Join(DispositionCodes, ", "))
	}
	return f.Disposition, nil
}
