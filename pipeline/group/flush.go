package group

import (
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"

	"convpipe/pipeline"
)

// Flush ends the current object: it emits every order not yet emitted,
// removes the temporary files and makes the Grouper ready for the next
// object. It returns the first error of the object (from Add, emit or a
// temporary file); the object's remaining orders are then dropped.
func (g *Grouper) Flush() error {
	if g.cfgErr != nil {
		return g.cfgErr
	}
	err := g.err
	if err == nil && g.started {
		g.stats.Objects++
		if g.scattered && g.cfg.Mode == Auto {
			g.stats.Scattered++
		}
		err = g.flush()
	}
	if cerr := g.reset(); err == nil {
		err = cerr
	}
	return err
}

func (g *Grouper) flush() error {
	switch g.state {
	case stateSorted:
		if len(g.sorted) > 0 {
			return g.emitBuffer()
		}
	case stateMemory:
		return g.emitMemory()
	case stateRun:
		return g.streamRun()
	case statePartitioned:
		for _, p := range g.parts {
			if err := p.finish(); err != nil {
				return err
			}
		}
		for i, p := range g.parts {
			g.parts[i] = nil
			if err := g.processPartition(p, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// emitBuffer emits a copy of the sorted buffer, of the exact size, and
// empties the buffer for reuse: one allocation per order.
func (g *Grouper) emitBuffer() error {
	lines := slices.Clone(g.sorted)
	clear(g.sorted) // drop the rows' references
	g.sorted, g.memBytes = g.sorted[:0], 0
	if cap(g.sorted) > 1024 {
		g.sorted = nil // after a huge order
	}
	return g.emitLines(lines)
}

func (g *Grouper) emitLines(lines []pipeline.Row) error {
	g.stats.Orders++
	return g.emit(lines)
}

// emitMemory emits the orders held in memory in first-seen order.
func (g *Grouper) emitMemory() error {
	for i := range g.groups {
		lines := g.groups[i].rows
		g.groups[i].rows = nil
		if err := g.emitLines(lines); err != nil {
			return err
		}
	}
	g.clearMemory()
	return nil
}

// streamRun reads the run file back, emitting one order at a time.
func (g *Grouper) streamRun() error {
	run := g.run
	if err := run.finish(); err != nil {
		return err
	}
	err := g.readBack(run, func(key string, row pipeline.Row) error {
		if len(g.sorted) > 0 && key != g.curKey {
			if err := g.emitBuffer(); err != nil {
				return err
			}
		}
		if len(g.sorted) == 0 {
			g.curKey = key
		}
		g.sorted = append(g.sorted, row)
		return nil
	})
	if err != nil {
		return err
	}
	if len(g.sorted) > 0 {
		return g.emitBuffer()
	}
	return nil
}

// readBack calls fn with each record of a spill file, in file order.
func (g *Grouper) readBack(f *spillFile, fn func(key string, row pipeline.Row) error) error {
	rr, err := f.reader()
	if err != nil {
		return err
	}
	defer rr.close()
	dec := rowDecoder{obj: g.obj, hdr: g.hdr}
	for {
		body, err := rr.next()
		if err == io.EOF {
			return rr.close()
		}
		if err != nil {
			return err
		}
		key, row, err := dec.decode(body)
		if err != nil {
			return rr.corrupt(err)
		}
		if err := fn(key, row); err != nil {
			return err
		}
	}
}

// processPartition emits the orders of one finished partition, splitting
// it first while it is larger than the budget and holds more than one key.
func (g *Grouper) processPartition(p *spillFile, depth int) error {
	if p.rows > 0 && p.mem > g.budget && p.mixed && depth < maxDepth {
		return g.split(p, depth)
	}
	if p.rows > 0 {
		if p.mem > g.budget {
			g.stats.OverBudget++
		}
		if err := g.load(p); err != nil {
			return err
		}
	}
	return p.remove()
}

func (g *Grouper) split(p *spillFile, depth int) error {
	subs, err := g.createPartitions(p.name+".", fanout(p.mem, g.budget, 2))
	if err != nil {
		return err
	}
	g.stats.Repartitions++
	if err := g.route(p, subs, maphash.MakeSeed()); err != nil {
		return err
	}
	if err := p.remove(); err != nil {
		return err
	}
	for _, s := range subs {
		if err := s.finish(); err != nil {
			return err
		}
	}
	for i, s := range subs {
		subs[i] = nil
		if err := g.processPartition(s, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// load reads a partition into memory and emits its orders.
func (g *Grouper) load(p *spillFile) error {
	g.clearMemory()
	err := g.readBack(p, func(key string, row pipeline.Row) error {
		g.group(key, row)
		return nil
	})
	if err != nil {
		return err
	}
	return g.emitMemory()
}

// Discard drops the current object without emitting what it holds, and
// removes its temporary files. The Grouper can take a new object
// afterwards.
func (g *Grouper) Discard() error { return g.reset() }

// Close removes any temporary files and drops what the current object
// holds, without emitting it; use it (deferred) for an early stop. It is
// safe to call more than once and after Flush.
func (g *Grouper) Close() error { return g.reset() }

func (g *Grouper) reset() error {
	var err error
	for _, f := range g.files {
		f.close()
	}
	if g.dir != "" {
		if e := os.RemoveAll(g.dir); e != nil {
			err = fmt.Errorf("group: remove temporary files: %w", e)
		}
	}
	g.err, g.started, g.obj, g.hdr, g.scattered, g.dir = nil, false, nil, nil, false, ""
	g.state = g.initialState()
	g.clearMemory()
	g.sorted, g.curKey, g.run, g.seen, g.parts, g.files = nil, "", nil, hashSet{}, nil, nil
	g.fillKey, g.emptyRows = "", 0
	return err
}
