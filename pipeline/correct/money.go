package correct

import (
	"fmt"
	"math/big"
	"strings"

	"convpipe/pipeline"
)

// cents reads an amount as the API takes it (a decimal with at most two
// places after the point once normalised) as whole cents; "" is 0.
func cents(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	r.Mul(r, big.NewRat(100, 1))
	// Round half away from zero, as amounts are rounded to the cent.
	n, d := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(d) >= 0 {
		if n.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return q.Int64(), nil
}

// formatCents writes cents as the API's amount: "12.50", "-0.40".
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// quantity reads an item's quantity; "" is 1 (the mapping's rule for an
// order's amount).
func quantity(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 1, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("quantity %q is not a whole number", s)
	}
	return r.Num().Int64(), nil
}

// lineCents is an item's amount: its subtotal, or price × quantity, less
// its discount.
func lineCents(it pipeline.LineItem) (int64, error) {
	q, err := quantity(it.Quantity)
	if err != nil {
		return 0, err
	}
	var line int64
	if it.SubTotal != "" {
		if line, err = cents(it.SubTotal); err != nil {
			return 0, fmt.Errorf("subtotal of %s: %w", it.Sku, err)
		}
	} else {
		p, err := priceRat(it.Price)
		if err != nil {
			return 0, fmt.Errorf("price of %s: %w", it.Sku, err)
		}
		if line, err = cents(p.Mul(p, big.NewRat(q, 1)).FloatString(4)); err != nil {
			return 0, err
		}
	}
	d, err := cents(it.Discount)
	if err != nil {
		return 0, fmt.Errorf("discount of %s: %w", it.Sku, err)
	}
	return line - d, nil
}

func priceRat(s string) (*big.Rat, error) {
	if strings.TrimSpace(s) == "" {
		return new(big.Rat), nil
	}
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return r, nil
}

// total is the amount impact computes for lines: the order's amount
// without items, or the sum of its items, less the order's discount.
func total(l pipeline.Lines) (int64, error) {
	t, err := cents(l.Amount)
	if err != nil {
		return 0, fmt.Errorf("amount: %w", err)
	}
	for _, it := range l.Items {
		c, err := lineCents(it)
		if err != nil {
			return 0, err
		}
		t += c
	}
	d, err := cents(l.OrderDiscount)
	if err != nil {
		return 0, fmt.Errorf("order discount: %w", err)
	}
	return t - d, nil
}
