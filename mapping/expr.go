package mapping

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"convpipe/pipeline"
)

// decimal is an exact decimal number in an expression: "0.1" + "0.2" is
// 0.3, not 0.30000000000000004. Its value is never changed after it is
// made, so copies may share it.
type decimal struct{ r *big.Rat }

// String writes d with up to 10 decimals, rounded half to even, without
// trailing zeros.
func (d decimal) String() string {
	s := roundHalfEven(d.r, 10)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// parseDecimal reads a plain decimal ("-12.50", "1e3", as the number and
// integer transforms write them).
func parseDecimal(s string) (decimal, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/") {
		return decimal{}, false
	}
	return decimal{r: r}, true
}

// roundHalfEven writes r with exactly places decimals, rounded half to
// even (banker's rounding: 1.005 → 1.00, 1.015 → 1.02, 0.125 → 0.12).
func roundHalfEven(r *big.Rat, places int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	num := new(big.Int).Mul(r.Num(), scale)
	q, rem := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	// Compare twice the remainder with the denominator.
	twice := new(big.Int).Abs(rem)
	twice.Lsh(twice, 1)
	if c := twice.Cmp(r.Denom()); c > 0 || c == 0 && q.Bit(0) == 1 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	neg := q.Sign() < 0
	digits := new(big.Int).Abs(q).String()
	if places > 0 {
		if len(digits) <= places {
			digits = strings.Repeat("0", places-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-places] + "." + digits[len(digits)-places:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// toDecimal converts an operand of an arithmetic operator: a decimal, or
// a number literal of the expression (an int, or a float64 read back
// from its shortest text, so that 0.1 is exactly 0.1).
func toDecimal(v any) (decimal, error) {
	switch v := v.(type) {
	case decimal:
		if v.r == nil {
			return decimal{}, errors.New("an empty value in arithmetic")
		}
		return v, nil
	case int:
		return decimal{r: new(big.Rat).SetInt64(int64(v))}, nil
	case float64:
		r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
		if !ok {
			return decimal{}, fmt.Errorf("not a finite number: %v", v)
		}
		return decimal{r: r}, nil
	case nil:
		return decimal{}, errors.New("an empty value in arithmetic")
	}
	return decimal{}, fmt.Errorf("not a number: %T", v)
}

// decimalOps are the operators overloaded for decimals, each with its
// function.
var decimalOps = []struct {
	op, fn string
	arith  func(a, b *big.Rat) (*big.Rat, error)
	cmp    func(c int) bool
}{
	{op: "+", fn: "decimalAdd", arith: func(a, b *big.Rat) (*big.Rat, error) { return new(big.Rat).Add(a, b), nil }},
	{op: "-", fn: "decimalSub", arith: func(a, b *big.Rat) (*big.Rat, error) { return new(big.Rat).Sub(a, b), nil }},
	{op: "*", fn: "decimalMul", arith: func(a, b *big.Rat) (*big.Rat, error) { return new(big.Rat).Mul(a, b), nil }},
	{op: "/", fn: "decimalQuo", arith: func(a, b *big.Rat) (*big.Rat, error) {
		if b.Sign() == 0 {
			return nil, errors.New("division by zero")
		}
		return new(big.Rat).Quo(a, b), nil
	}},
	{op: "<", fn: "decimalLess", cmp: func(c int) bool { return c < 0 }},
	{op: "<=", fn: "decimalLessEq", cmp: func(c int) bool { return c <= 0 }},
	{op: ">", fn: "decimalMore", cmp: func(c int) bool { return c > 0 }},
	{op: ">=", fn: "decimalMoreEq", cmp: func(c int) bool { return c >= 0 }},
	{op: "==", fn: "decimalEq", cmp: func(c int) bool { return c == 0 }},
	{op: "!=", fn: "decimalNe", cmp: func(c int) bool { return c != 0 }},
}

// exprOptions are the options every expression is compiled with: env
// (the sample values of its variables) and the decimal operators.
func exprOptions(env map[string]any) []expr.Option {
	opts := []expr.Option{expr.Env(env)}
	for _, o := range decimalOps {
		o := o
		fn := func(params ...any) (any, error) {
			a, err := toDecimal(params[0])
			if err != nil {
				return nil, err
			}
			b, err := toDecimal(params[1])
			if err != nil {
				return nil, err
			}
			if o.cmp != nil {
				return o.cmp(a.r.Cmp(b.r)), nil
			}
			r, err := o.arith(a.r, b.r)
			if err != nil {
				return nil, err
			}
			return decimal{r: r}, nil
		}
		if o.cmp != nil {
			opts = append(opts, expr.Function(o.fn, fn,
				new(func(decimal, decimal) bool), new(func(decimal, int) bool), new(func(int, decimal) bool),
				new(func(decimal, float64) bool), new(func(float64, decimal) bool)))
		} else {
			opts = append(opts, expr.Function(o.fn, fn,
				new(func(decimal, decimal) decimal), new(func(decimal, int) decimal), new(func(int, decimal) decimal),
				new(func(decimal, float64) decimal), new(func(float64, decimal) decimal)))
		}
		opts = append(opts, expr.Operator(o.op, o.fn))
	}
	return opts
}

// exprVar is a variable of an expression: a value made like a field's,
// and whether it is a decimal (its last transform is number or integer)
// or text.
type exprVar struct {
	name    string
	plan    *plan
	decimal bool
}

// exprPlan is a compiled expression.
type exprPlan struct {
	code string
	prog *vm.Program
	vars []exprVar
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// compileExpr makes p compute its value with the expression code over
// vars, compiled once here.
func (m *Mapping) compileExpr(p *plan, key, code string, vars map[string]FieldSpec) error {
	if strings.TrimSpace(code) == "" {
		return errAt(key+".expr", "empty")
	}
	e := &exprPlan{code: code}
	env := make(map[string]any, len(vars))
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vkey := key + ".vars." + n
		if !identifier.MatchString(n) {
			return errAt(vkey, "not a name an expression can use (letters, digits and _, not first a digit)")
		}
		spec := vars[n]
		if spec.Expr != "" || len(spec.Vars) > 0 || spec.Split != "" || spec.KeepEmpty {
			return errAt(vkey, "a variable takes column, const or template and transforms only")
		}
		vp := &plan{def: &fieldDef{name: n, kind: kindDecimal, item: p.def.item}, key: vkey, splitIdx: -1}
		if err := m.compileSource(vp, vkey, spec); err != nil {
			return err
		}
		steps, err := compileChain(vkey, spec.Transforms, kindDecimal)
		if err != nil {
			return err
		}
		vp.steps = steps
		for _, t := range spec.Transforms {
			vp.names = append(vp.names, transformName(t))
		}
		if vp.src == srcConst {
			v, in, i, err := vp.apply(*spec.Const)
			if err != nil {
				return errAt(vkey, "const %q: %s: %v", display(in), vp.names[i], err)
			}
			vp.konst = v
		}
		ev := exprVar{name: n, plan: vp}
		if len(steps) > 0 {
			switch steps[len(steps)-1].(type) {
			case numberStep, integerStep:
				ev.decimal = true
			}
		}
		env[n] = ""
		if ev.decimal {
			env[n] = decimal{r: new(big.Rat)}
		}
		e.vars = append(e.vars, ev)
		for _, s := range vp.slots {
			if !containsInt(p.slots, s) {
				p.slots = append(p.slots, s)
			}
		}
	}
	prog, err := expr.Compile(code, exprOptions(env)...)
	if err != nil {
		return errAt(key+".expr", "%s", exprMessage(err))
	}
	e.prog = prog
	p.expr = e
	p.src = srcExpr
	p.from = fmt.Sprintf("expr %q", code)
	return nil
}

// exprMessage is the first line of an error of the expression library
// (the others draw the expression with a caret), without Go's package
// name in type names.
func exprMessage(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.ReplaceAll(msg, "mapping.decimal", "decimal")
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// eval evaluates the expression on line r and writes its result for the
// field d. On failure it returns the value at fault.
func (e *exprPlan) eval(r *pipeline.Row, idx []int, d *fieldDef) (string, string, error) {
	env := make(map[string]any, len(e.vars))
	for _, v := range e.vars {
		s, in, step, err := v.plan.value(r, idx)
		if err != nil {
			return "", in, fmt.Errorf("%s: %s", v.name, v.plan.failure(step, err))
		}
		if !v.decimal {
			env[v.name] = s
			continue
		}
		if s == "" {
			return "", "", fmt.Errorf("%s is empty (%s): put a default before its number or integer transform", v.name, v.plan.from)
		}
		dv, ok := parseDecimal(s)
		if !ok {
			return "", s, fmt.Errorf("%s: not a number", v.name)
		}
		env[v.name] = dv
	}
	out, err := expr.Run(e.prog, env)
	if err != nil {
		return "", "", errors.New(exprMessage(err))
	}
	return formatResult(out, d)
}

// formatResult writes an expression's result as the value of the field
// d: a number of a money field with 2 decimals (rounded half to even), of
// a quantity as a whole number, of another field with up to 10 decimals;
// text as it is; a bool as true or false; nil as empty.
func formatResult(out any, d *fieldDef) (string, string, error) {
	switch v := out.(type) {
	case nil:
		return "", "", nil
	case string:
		return v, "", nil
	case bool:
		return strconv.FormatBool(v), "", nil
	}
	n, err := toDecimal(out)
	if err != nil {
		return "", "", fmt.Errorf("the result is %T, not a number, text or bool", out)
	}
	switch d.kind {
	case kindMoney:
		return roundHalfEven(n.r, 2), "", nil
	case kindQuantity:
		if !n.r.IsInt() {
			return "", n.String(), errors.New("the result is not a whole number")
		}
		return n.r.Num().String(), "", nil
	}
	return n.String(), "", nil
}
