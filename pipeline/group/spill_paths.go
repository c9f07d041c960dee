package group

import (
	"encoding/binary"
	"hash/maphash"
	"io"
	"math"
	"unsafe"

	"convpipe/pipeline"
)

// spill moves the rows held in memory to temporary files.
func (g *Grouper) spill() error {
	if g.cfg.Mode == Auto && !g.scattered {
		return g.memoryToRun()
	}
	return g.memoryToPartitions()
}

func (g *Grouper) memoryToRun() error {
	run, err := g.createSpill("run", runBuffer)
	if err != nil {
		return err
	}
	g.run = run
	collision := false
	for i := range g.groups {
		gr := &g.groups[i]
		if !g.seen.insert(maphash.String(g.seed, gr.key)) {
			collision = true
		}
		for j := range gr.rows {
			if err := g.write(run, gr.key, &gr.rows[j]); err != nil {
				return err
			}
		}
		gr.rows = nil
	}
	g.curKey = g.groups[g.cur].key
	g.clearMemory()
	g.state = stateRun
	g.stats.RunSpills++
	g.notePeak(g.seen.bytes())
	if collision || g.seen.bytes() > g.budget {
		return g.runToPartitions()
	}
	return nil
}

func (g *Grouper) addRun(k string, r pipeline.Row) error {
	if k != g.curKey {
		fresh := g.seen.insert(maphash.String(g.seed, k))
		g.curKey = k
		g.notePeak(g.seen.bytes())
		if !fresh {
			g.scattered = true
		}
		if !fresh || g.seen.bytes() > g.budget {
			if err := g.runToPartitions(); err != nil {
				return err
			}
			return g.addPartitioned(k, r)
		}
	}
	return g.write(g.run, k, &r)
}

func (g *Grouper) memoryToPartitions() error {
	parts, err := g.createPartitions("p", g.topFanout())
	if err != nil {
		return err
	}
	g.parts = parts
	for i := range g.groups {
		gr := &g.groups[i]
		p := g.parts[partition(g.seed, gr.key, len(g.parts))]
		for j := range gr.rows {
			if err := g.write(p, gr.key, &gr.rows[j]); err != nil {
				return err
			}
		}
		gr.rows = nil
	}
	g.clearMemory()
	g.state = statePartitioned
	g.stats.PartitionSpills++
	return nil
}

// runToPartitions moves the run file's rows to hash partitions, once the
// object turned out scattered.
func (g *Grouper) runToPartitions() error {
	run := g.run
	if err := run.finish(); err != nil {
		return err
	}
	parts, err := g.createPartitions("p", g.topFanout())
	if err != nil {
		return err
	}
	g.parts = parts
	if err := g.route(run, parts, g.seed); err != nil {
		return err
	}
	g.run = nil
	if err := run.remove(); err != nil {
		return err
	}
	g.seen = hashSet{}
	g.state = statePartitioned
	g.stats.PartitionSpills++
	return nil
}

func (g *Grouper) addPartitioned(k string, r pipeline.Row) error {
	return g.write(g.parts[partition(g.seed, k, len(g.parts))], k, &r)
}

func partition(seed maphash.Seed, key string, n int) int {
	return int(maphash.String(seed, key) % uint64(n))
}

// topFanout chooses the number of partitions from the object's size: its
// rows take roughly three times their file size in memory, and each
// partition should come back at half the budget.
func (g *Grouper) topFanout() int {
	est := int64(0)
	if g.obj != nil && g.obj.Size > 0 && g.obj.Size < math.MaxInt64/8 {
		est = 3 * g.obj.Size
	}
	return fanout(est, g.budget, minFanout)
}

func fanout(bytes, budget int64, lo int) int {
	n := int64(math.Ceil(2 * float64(bytes) / float64(budget)))
	return int(max(int64(lo), min(n, maxFanout)))
}

// write appends one row to a temporary file.
func (g *Grouper) write(sf *spillFile, key string, r *pipeline.Row) error {
	// Encode into the writer's buffer when the record fits.
	rec := appendRecord(sf.w.AvailableBuffer(), key, r)
	if err := sf.write(rec, key, recordMem(r, len(key))); err != nil {
		return err
	}
	g.stats.SpilledRows++
	g.stats.SpilledBytes += int64(len(rec))
	return nil
}

// route copies every record of src, which is finished, to dst by the hash
// of its key.
func (g *Grouper) route(src *spillFile, dst []*spillFile, seed maphash.Seed) error {
	rr, err := src.reader()
	if err != nil {
		return err
	}
	defer rr.close()
	for {
		body, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h, err := parseHead(body)
		if err != nil {
			return rr.corrupt(err)
		}
		// The key is used only until the next record is read.
		key := unsafeString(body[h.dataStart : h.dataStart+h.keyLen])
		d := dst[partition(seed, key, len(dst))]
		rec := binary.AppendUvarint(d.w.AvailableBuffer(), uint64(len(body)))
		rec = append(rec, body...)
		if err := d.write(rec, key, h.mem()); err != nil {
			return err
		}
		g.stats.SpilledRows++
		g.stats.SpilledBytes += int64(len(rec))
	}
	return rr.close()
}

// unsafeString returns the bytes of b as a string without copying; b must
// not change while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
