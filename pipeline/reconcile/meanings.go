package reconcile

import "strings"

// meanings are impact's processing ErrorReasons in plain words, with what
// to do; docs/reconcile.md holds the same table (a test keeps them equal).
var meanings = map[string]string{
	"ACTION_REF_NOT_FOUND":            "impact found no click or other referral for the order, so no partner is credited; check that the attribution key (ClickId, ...) is passed on from the landing page",
	"ACTIONTERMS_NOT_FOUND":           "the partner's contract has no terms for this event type; add the event type to the contract, or send the right EventTypeId",
	"ACTIONTRACKER_CAMPAIGN_MISMATCH": "the event type belongs to another program than the CampaignId sent; check mapping's EventTypeId and CampaignId",
	"ACTIONTRACKER_NOT_ACTIVE":        "the event type exists but is not enabled yet; enable it in impact, then send the orders again",
	"ACTIONTRACKER_NOT_FOUND":         "impact does not know the event type sent; the EventTypeId (or code) in the mapping is probably wrong",
	"BLACKLISTED_SOURCE_IP":           "the customer's IP address is blocked by a restriction of the program (often a country rule)",
	"BLOCKED_BY_PROMOCODE":            "a partner used a promo code that is not assigned to them, so the action was blocked",
	"CAMPAIGN_NOT_FOUND":              "impact does not know the CampaignId sent; the campaign (program) id in the mapping is probably wrong",
	"CONTRACT_NOT_FOUND":              "no partner contract was in force for the order when it was processed, so nobody can be paid for it; check the campaign id and the partner's contract dates",
	"CONV_DUPLICATE":                  "impact already had an order with this OrderId for this event type (from another integration, a tag, or an earlier send), so this conversion made no action of its own",
	"CREDITING_RULE_MISMATCH":         "the program's crediting rules (last click wins, say) gave the order to no partner that could be credited",
	"MALFORMED":                       "the click data could not be understood, or was tagged in error (a deep-link domain mismatch, say)",
	"MAX_RECURRENCES_REACHED":         "the referral already earned as many actions as the contract allows",
	"NO_ITEM":                         "the sale carried no items; check the item columns of the mapping",
	"NO_VALID_ACTION_REF":             "a referral was found, but it is not one the contract pays for",
	"NO_VALID_REFERRERS_FOUND":        "no referrer within the contract's windows could be credited, often because the order is too old for its click",
	"OID_MISSING":                     "impact found no OrderId in the conversion",
	"OTHER_REF_PRIORITIZED":           "another referral was preferred for the order (attribution reports only)",
	"OUTSIDE_ASSOCIATION_WINDOW":      "the event date is outside the click's referral window, so the click no longer counts; old orders sent late fail this way",
	"PARTNER_NOT_ACTIVE":              "the partner credited was not active when the order was processed",
	"REFTYPE_NOT_ACCEPTED":            "the contract pays nothing for the kind of referral used (a promo code instead of a click, say)",
	"RESTRICTED_PROMOCODE":            "the promo code used puts the order in another partner's channel, so the partner who referred it is not paid",
	"UNCLAIMED":                       "the order had only non-preferred sources (legacy attribution reports only)",
}

// Meaning returns what an ErrorReason means in plain words. impact may
// give several reasons separated by spaces: each is explained. An
// unknown reason says so.
func Meaning(reason string) string {
	var out []string
	for _, r := range strings.Fields(reason) {
		if m, ok := meanings[strings.ToUpper(r)]; ok {
			out = append(out, m)
		} else {
			out = append(out, r+" is not in convpipe's table of reasons (docs/reconcile.md): see impact's documentation of API submissions")
		}
	}
	return strings.Join(out, "; ")
}
