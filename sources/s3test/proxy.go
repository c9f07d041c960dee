package s3test

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards loopback TCP connections to a target and can cut the
// server-to-client side of a number of them after a number of bytes, as a
// server failing mid-object would.
type Proxy struct {
	// Endpoint is the proxy's URL, http://127.0.0.1:PORT.
	Endpoint string

	target   string
	l        net.Listener
	cutAfter atomic.Int64
	toCut    atomic.Int64
	cuts     atomic.Int64
	ranges   atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// NewProxy starts a proxy to target ("127.0.0.1:PORT").
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Endpoint: "http://" + l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// CutNext makes the next n connections end after they sent after bytes
// to the client (response headers included).
func (p *Proxy) CutNext(n int, after int64) {
	p.cutAfter.Store(after)
	p.toCut.Store(int64(n))
}

// Cuts returns how many connections were cut so far.
func (p *Proxy) Cuts() int { return int(p.cuts.Load()) }

// RangeRequests returns how many requests so far had a Range header.
func (p *Proxy) RangeRequests() int { return int(p.ranges.Load()) }

// Close stops the proxy and its connections.
func (p *Proxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		limit := int64(-1)
		if p.toCut.Add(-1) >= 0 {
			limit = p.cutAfter.Load()
		}
		p.wg.Add(1)
		go p.handle(client, limit)
	}
}

func (p *Proxy) handle(client net.Conn, limit int64) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	p.track(server, true)
	defer func() {
		client.Close()
		server.Close()
		p.track(client, false)
		p.track(server, false)
	}()
	go func() {
		io.Copy(io.MultiWriter(server, &counter{pattern: []byte("\r\nRange: bytes="), n: &p.ranges}), client)
		server.Close()
	}()
	if limit < 0 {
		io.Copy(client, server)
		return
	}
	n, _ := io.Copy(client, io.LimitReader(server, limit))
	if n == limit {
		p.cuts.Add(1)
	}
}

// counter counts the occurrences of pattern in what is written to it,
// across writes.
type counter struct {
	pattern []byte
	carry   []byte
	n       *atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	buf := append(c.carry, p...)
	c.n.Add(int64(bytes.Count(buf, c.pattern)))
	keep := min(len(buf), len(c.pattern)-1)
	c.carry = append(c.carry[:0:0], buf[len(buf)-keep:]...)
	return len(p), nil
}
