package mapping

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// Mapping is a compiled Config: it turns the lines of an order into a
// conversion. It is immutable after New and safe for concurrent use.
type Mapping struct {
	// columns lists the source columns read, by slot; uses says which
	// config keys read each.
	columns []string
	slots   map[string]int
	uses    [][]string

	keySlots []int
	// order and items are the plans of the mapped fields, in the
	// catalogue's wire order.
	order  []*plan
	items  []*plan
	byName map[string]*plan
	// orderSlots are the slots the order-level fields read; lines whose
	// cells agree there agree on every order-level value.
	orderSlots []int

	// splits are the item plans that split their cell into packed
	// items, in wire order.
	splits []*plan
	// from, when set, takes the items from a list column (items.from).
	from *itemsFrom

	rowFilters   []*filter
	orderFilters []*filter

	allowNow  bool
	strict    bool // every line repeats every order-level value
	normalize bool // the order key and OrderId (Config.NormalizeOrderKey)
	tolerance time.Duration
	// maxAge is the oldest an EventDate may be; 0 when not checked.
	maxAge   time.Duration
	maxItems int
	now      func() time.Time
	// digest starts every Fingerprint: the configuration's, nil when it
	// cannot be encoded.
	digest []byte

	// header caches the column positions of the last header seen.
	header atomic.Pointer[resolved]
}

var _ pipeline.Mapper = (*Mapping)(nil)

// srcKind is where a plan's value comes from.
type srcKind uint8

const (
	srcConst srcKind = iota
	srcColumn
	srcTemplate
	srcExpr
)

// plan is one compiled field.
type plan struct {
	def   *fieldDef
	key   string // "fields.OrderId", for messages
	src   srcKind
	konst string    // srcConst: the value after the transforms
	slot  int       // srcColumn
	tmpl  []part    // srcTemplate
	expr  *exprPlan // srcExpr
	slots []int     // every slot read
	steps []step
	names []string // the steps' names, for messages
	keep  bool     // KeepEmpty
	role  role
	from  string // where the value comes from, for messages
	// trusted is set when the last transform always writes a value of
	// the field's kind (a hash for a digest, a decimal for a number).
	trusted bool
	// split, when set, splits the column's cell into the values of
	// several items (packed items); splitIdx is the plan's index in
	// Mapping.splits, or -1.
	split    string
	splitIdx int
	// norm normalises the cells the plan reads and its value as order
	// keys are (normalizeOrderID): set for OrderId unless the mapping
	// does not normalise.
	norm bool
}

// role marks the fields that the structural rules look at.
type role uint8

const (
	roleNone role = iota
	roleEventTypeID
	roleEventTypeCode
	roleCampaignID
	roleOrderID
	roleEventDate
	roleSubTotalPost
	roleSku
	roleQuantity
	rolePrice
	roleSubTotal
	roleCount
)

var roles = map[string]role{
	"EventTypeId":               roleEventTypeID,
	"EventTypeCode":             roleEventTypeCode,
	"CampaignId":                roleCampaignID,
	"OrderId":                   roleOrderID,
	"EventDate":                 roleEventDate,
	"OrderSubTotalPostDiscount": roleSubTotalPost,
	"ItemSku":                   roleSku,
	"ItemQuantity":              roleQuantity,
	"ItemPrice":                 rolePrice,
	"ItemSubTotal":              roleSubTotal,
}

// part is a piece of a template: a literal, or a column when slot >= 0.
type part struct {
	lit  string
	slot int
}

// New compiles cfg: it resolves field names against the API's catalogue,
// parses templates, compiles regular expressions, time layouts, zones and
// lookups, and checks that the API's required fields are mapped. Its
// errors name the bad key, as Validate's do.
func New(cfg Config) (*Mapping, error) { return compile(cfg) }

func compile(cfg Config) (*Mapping, error) {
	if err := checkSettings(cfg); err != nil {
		return nil, err
	}
	m := &Mapping{
		slots:     make(map[string]int),
		byName:    make(map[string]*plan),
		allowNow:  cfg.AllowNow,
		strict:    cfg.StrictOrderValues,
		normalize: cfg.NormalizeOrderKey == nil || *cfg.NormalizeOrderKey,
		tolerance: cfg.FutureTolerance,
		maxAge:    time.Duration(cmp.Or(cfg.MaxEventAge, Age(DefaultMaxEventAge))),
		maxItems:  cfg.MaxItems,
		now:       time.Now,
		digest:    fingerprintDigest(cfg),
	}
	if m.tolerance == 0 {
		m.tolerance = DefaultFutureTolerance
	}
	if m.maxItems == 0 {
		m.maxItems = DefaultMaxItems
	}
	if cfg.AllowOld {
		m.maxAge = 0
	}
	for i, c := range cfg.OrderKey {
		m.keySlots = append(m.keySlots, m.use(c, fmt.Sprintf("order_key[%d]", i)))
	}
	if err := m.compileFields(cfg); err != nil {
		return nil, err
	}
	if err := m.checkRequired(); err != nil {
		return nil, err
	}
	if err := m.defaultOrderKey(); err != nil {
		return nil, err
	}
	m.collectOrderSlots()
	if err := m.compileFilters(cfg.Filters); err != nil {
		return nil, err
	}
	return m, nil
}

// checkSettings checks the settings that need no field: the limits, the
// order key's column names, and that fields is not empty.
func checkSettings(cfg Config) error {
	if cfg.FutureTolerance < 0 {
		return errAt("future_tolerance", "must be >= 0")
	}
	if cfg.MaxEventAge < 0 {
		return errAt("max_event_age", "must be >= 0")
	}
	if cfg.MaxItems < 0 {
		return errAt("max_items", "must be >= 0")
	}
	for i, c := range cfg.OrderKey {
		if strings.TrimSpace(c) == "" {
			return errAt(fmt.Sprintf("order_key[%d]", i), "empty column name")
		}
	}
	if len(cfg.Fields) == 0 {
		return errAt("fields", "required: map at least EventTypeId, CampaignId, OrderId, EventDate and an attribution key")
	}
	return nil
}

// compileFields compiles the plans of fields and items and sorts them in
// the catalogue's wire order. Its error joins those of every bad field.
func (m *Mapping) compileFields(cfg Config) error {
	errs := m.compileLevel(cfg.Fields, false, "fields")
	items, from, err := splitItemsFrom(cfg.Items)
	switch {
	case err != nil:
		errs = append(errs, err)
	case from != "":
		errs = append(errs, m.compileItemsFrom(items, from)...)
	default:
		errs = append(errs, m.compileLevel(items, true, "items")...)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	byPos := func(a, b *plan) int { return a.def.pos - b.def.pos }
	slices.SortFunc(m.order, byPos)
	slices.SortFunc(m.items, byPos)
	for _, p := range m.items {
		if p.split != "" {
			p.splitIdx = len(m.splits)
			m.splits = append(m.splits, p)
		}
	}
	return nil
}

// compileSplit sets the separator by which the item field p splits its
// column's cell into packed items.
func compileSplit(p *plan, key string, spec FieldSpec) error {
	if spec.Split == "" {
		return nil
	}
	switch {
	case !p.def.item:
		return errAt(key+".split", "only item fields split a cell into items")
	case p.src != srcColumn:
		return errAt(key+".split", "only with column (the cell that packs the items' values)")
	case strings.TrimSpace(spec.Split) == "":
		return errAt(key+".split", "a separator of white space only; the parts are trimmed, so name a visible one (\"|\", \";\")")
	}
	p.split = strings.TrimSpace(spec.Split)
	return nil
}

// compileLevel compiles the specs under key (fields, or items when item
// is set), in catalogue order, and returns the errors of the bad ones.
func (m *Mapping) compileLevel(specs map[string]FieldSpec, item bool, key string) []error {
	cat := &orderFields
	if item {
		cat = &itemFields
	}
	var errs []error
	for _, name := range catalogueOrder(specs, cat) {
		fkey := key + "." + name
		d, ok := cat.lookup(name)
		if !ok {
			errs = append(errs, errAt(fkey, "%s", unknownField(name, item)))
			continue
		}
		p, err := m.compilePlan(fkey, d, specs[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.byName[name] = p
		if item {
			m.items = append(m.items, p)
		} else {
			m.order = append(m.order, p)
		}
	}
	return errs
}

// defaultOrderKey makes the columns OrderId reads the order key when the
// configuration names none.
func (m *Mapping) defaultOrderKey() error {
	if len(m.keySlots) > 0 {
		return nil
	}
	p := m.byName["OrderId"]
	if len(p.slots) == 0 {
		return errAt("order_key", "required when OrderId is a constant")
	}
	m.keySlots = p.slots
	return nil
}

// collectOrderSlots sets orderSlots to the slots the order-level fields
// read, each once.
func (m *Mapping) collectOrderSlots() {
	seen := make(map[int]bool)
	for _, p := range m.order {
		for _, s := range p.slots {
			if !seen[s] {
				seen[s] = true
				m.orderSlots = append(m.orderSlots, s)
			}
		}
	}
}

// compileFilters compiles the filters into rowFilters and orderFilters,
// each in the configuration's order.
func (m *Mapping) compileFilters(filters []Filter) error {
	for i, f := range filters {
		key := fmt.Sprintf("filters[%d]", i)
		cf, err := compileFilter(key, f, m)
		if err != nil {
			return err
		}
		if cf.scope == skipRow {
			m.rowFilters = append(m.rowFilters, cf)
		} else {
			m.orderFilters = append(m.orderFilters, cf)
		}
	}
	return nil
}

// catalogueOrder returns the names of specs in the catalogue's order,
// unknown names last in alphabetical order.
func catalogueOrder(specs map[string]FieldSpec, cat *catalogue) []string {
	names := sortedKeys(specs)
	pos := func(n string) int {
		if d, ok := cat.lookup(n); ok {
			return d.pos
		}
		return len(cat.list)
	}
	slices.SortStableFunc(names, func(a, b string) int { return pos(a) - pos(b) })
	return names
}

// use returns the slot of column, recording that key reads it.
func (m *Mapping) use(column, key string) int {
	s, ok := m.slots[column]
	if !ok {
		s = len(m.columns)
		m.slots[column] = s
		m.columns = append(m.columns, column)
		m.uses = append(m.uses, nil)
	}
	if !slices.Contains(m.uses[s], key) {
		m.uses[s] = append(m.uses[s], key)
	}
	return s
}

func (m *Mapping) planFor(field string) *plan { return m.byName[field] }

func (m *Mapping) compilePlan(key string, d *fieldDef, spec FieldSpec) (*plan, error) {
	p := &plan{def: d, key: key, keep: spec.KeepEmpty, role: roles[d.name], splitIdx: -1}
	p.norm = m.normalize && p.role == roleOrderID
	if err := m.compileSource(p, key, spec); err != nil {
		return nil, err
	}
	if err := compileSplit(p, key, spec); err != nil {
		return nil, err
	}
	steps, err := compileChain(key, spec.Transforms, d.kind)
	if err != nil {
		return nil, err
	}
	p.steps = steps
	if len(steps) > 0 {
		p.trusted = trusts(steps[len(steps)-1], d.kind)
	}
	if p.src == srcExpr {
		p.names = append(p.names, "expr")
	}
	for _, t := range spec.Transforms {
		p.names = append(p.names, transformName(t))
	}
	if p.src == srcConst {
		if err := m.compileConst(p, key, *spec.Const); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// compileSource sets where the value of p comes from: exactly one of the
// spec's column, const and template.
func (m *Mapping) compileSource(p *plan, key string, spec FieldSpec) error {
	sources := 0
	if spec.Column != "" {
		sources++
		p.from = fmt.Sprintf("column %q", spec.Column)
		p.src, p.slot = srcColumn, m.use(spec.Column, key)
		p.slots = []int{p.slot}
	}
	if spec.Const != nil {
		sources++
		p.src = srcConst
		p.from = "const"
	}
	if spec.Template != "" {
		sources++
		if err := m.compileTemplate(p, key, spec.Template); err != nil {
			return err
		}
	}
	if spec.Expr != "" {
		sources++
		if err := m.compileExpr(p, key, spec.Expr, spec.Vars); err != nil {
			return err
		}
	} else if len(spec.Vars) > 0 {
		return errAt(key+".vars", "only with expr")
	}
	if sources != 1 {
		return errAt(key, "name exactly one of column, const, template or expr")
	}
	return nil
}

// compileTemplate makes p read the template t, resolving its columns to
// slots.
func (m *Mapping) compileTemplate(p *plan, key, t string) error {
	parts, err := parseTemplate(t)
	if err != nil {
		return errAt(key+".template", "%w", err)
	}
	p.src = srcTemplate
	p.from = fmt.Sprintf("template %q", t)
	for i := range parts {
		if parts[i].slot >= 0 {
			s := m.use(parts[i].lit, key)
			parts[i] = part{slot: s}
			if !slices.Contains(p.slots, s) {
				p.slots = append(p.slots, s)
			}
		}
	}
	p.tmpl = parts
	if len(p.slots) == 0 {
		return errAt(key+".template", "names no column; use const for a constant")
	}
	return nil
}

// compileConst applies the transforms of p to the constant c once and
// checks the result, which p then always gives.
func (m *Mapping) compileConst(p *plan, key, c string) error {
	v, in, i, err := p.apply(c)
	if err != nil {
		return errAt(key, "const %q: %s: %v", display(in), p.names[i], err)
	}
	if p.def.name == "EventDate" && v == "NOW" {
		if !m.allowNow {
			return errAt(key, "const NOW: %s", nowRefused)
		}
	} else if msg := checkValue(p.def, v); msg != "" {
		return errAt(key, "const %q: %s", display(v), msg)
	}
	p.konst = v
	p.trusted = true // checked here, once
	return nil
}

// trusts reports whether every output of s is of kind k.
func trusts(s step, k kind) bool {
	switch s := s.(type) {
	case hashStep:
		return k == kindDigest
	case timeStep:
		return k == kindDate
	case numberStep:
		return k == kindDecimal || k == kindMoney && s.f.decimals >= 0 && s.f.decimals <= 2
	}
	return false
}

// checkRequired refuses configurations that cannot make a valid
// conversion.
func (m *Mapping) checkRequired() error {
	var errs []error
	has := func(n string) bool { return m.byName[n] != nil }
	if !has("EventTypeId") && !has("EventTypeCode") {
		errs = append(errs, errAt("fields", "map EventTypeId or EventTypeCode"))
	}
	for _, n := range []string{"CampaignId", "OrderId", "EventDate"} {
		if !has(n) {
			errs = append(errs, errAt("fields."+n, "required"))
		}
	}
	attribution := false
	for _, p := range m.order {
		attribution = attribution || p.def.attribution
	}
	if !attribution {
		errs = append(errs, errAt("fields", "map at least one attribution key (%s)", attributionKeys()))
	}
	if len(m.items) > 0 {
		for _, n := range rules.RequiredItemFields {
			if !has(n) {
				errs = append(errs, errAt("items."+n, "%s", requiredItemText(n)))
			}
		}
		if !has("ItemPrice") && !has("ItemSubTotal") {
			errs = append(errs, errAt("items", "map ItemPrice (unit price) or ItemSubTotal (line total)"))
		}
	}
	return errors.Join(errs...)
}

func transformName(t Transform) string {
	switch {
	case t.Trim:
		return "trim"
	case t.Lower:
		return "lower"
	case t.Upper:
		return "upper"
	case t.Lookup != nil:
		return "lookup"
	case t.Default != nil:
		return "default"
	case t.Replace != nil:
		return "replace"
	case t.Extract != "":
		return "extract"
	case t.Number != nil:
		return "number"
	case t.Integer != nil:
		return "integer"
	case t.Time != nil:
		return "time"
	}
	return "hash"
}

// parseTemplate splits "{store}-{order_id}" into parts; a column part
// carries its name in lit and slot 0 until resolved.
func parseTemplate(t string) ([]part, error) {
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{lit: lit.String(), slot: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; c {
		case '{':
			if i+1 < len(t) && t[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(t[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed { at offset %d", i)
			}
			name := t[i+1 : i+1+end]
			if name == "" || strings.ContainsAny(name, "{") {
				return nil, fmt.Errorf("empty or bad column name at offset %d", i)
			}
			flush()
			parts = append(parts, part{lit: name, slot: 0})
			i += end + 1
		case '}':
			if i+1 < len(t) && t[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf("lone } at offset %d (write }} for a literal brace)", i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return parts, nil
}
