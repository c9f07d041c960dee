package engine

// forecast extrapolates, from the orders decided so far, how many orders
// of the rows still to come will be sent. It is pure: the runner feeds it
// each decided order and asks it for the rows not yet decided.
//
// An order is known (already final in the ledger: not sent again), sent,
// or neither (invalid, left out by a filter). Three shares make the
// estimate, each from what suits it:
//   - rows per order, over everything decided: a property of the export,
//     it settles quickly;
//   - the share of orders already known, over the last few orders only:
//     in a resume, or an export that grew, the orders sent before come
//     first, in one block, and the rest is new. Counted over the whole
//     run, that block would make the estimate several times too low while
//     the run sends the new part;
//   - the share of new orders that are sent, over the new orders decided
//     since the last such block ended: inside it, the only new orders are
//     the ones that were not sent before either (invalid ones), and would
//     make the share too low. Until twenty such orders were seen, over
//     the new orders outside any block, or else over every new order.
type forecast struct {
	orders, rows int64 // decided so far
	known        int64 // of them, already final in the ledger
	sent         int64 // of them, decided for sending
	// outside counts the new (not known) orders decided outside a block
	// of known ones, outsideSent those of them sent; since and sinceSent
	// the same since the last block ended.
	outside, outsideSent int64
	since, sinceSent     int64
	// recentKnown is the share of orders already known, as a moving
	// average with a half-life of 8 orders; -1 before the first order.
	recentKnown float64
}

// knownWeight is the weight of the newest order in recentKnown: a
// half-life of 8 orders (1 - 2^(-1/8)).
const knownWeight = 0.08299595

// minOutside is how many new orders outside a block of known ones the
// share of orders sent is taken from, at least.
const minOutside = 20

func newForecast() forecast { return forecast{recentKnown: -1} }

// add records one decided order of lines rows: known when the ledger had
// it as final with the same payload, send when it was decided for sending.
func (f *forecast) add(lines int, known, send bool) {
	f.orders++
	f.rows += int64(lines)
	k := 0.0
	inBlock := f.recentKnown >= 0.5
	switch {
	case known:
		f.known++
		k = 1
	case !inBlock:
		f.outside++
		f.since++
		if send {
			f.outsideSent++
			f.sinceSent++
		}
	}
	if send {
		f.sent++
	}
	if f.recentKnown < 0 {
		f.recentKnown = k
	} else {
		f.recentKnown += knownWeight * (k - f.recentKnown)
	}
	if inBlock && f.recentKnown < 0.5 { // a block ended
		f.since, f.sinceSent = 0, 0
	}
}

// toSend estimates how many orders the rows not yet decided hold that
// will be sent.
func (f *forecast) toSend(rowsToCome float64) float64 {
	if f.orders == 0 || f.rows == 0 || rowsToCome <= 0 {
		return 0
	}
	orders := rowsToCome * float64(f.orders) / float64(f.rows)
	sendShare := 1.0 // of new orders; all, until one was seen
	if f.since >= minOutside {
		sendShare = float64(f.sinceSent) / float64(f.since)
	} else if f.outside >= minOutside {
		sendShare = float64(f.outsideSent) / float64(f.outside)
	} else if fresh := f.orders - f.known; fresh > 0 {
		sendShare = float64(f.sent) / float64(fresh)
	}
	return orders * (1 - f.recentKnown) * sendShare
}
