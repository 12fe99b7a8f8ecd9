package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of failed authentication per client (see failLimiter).
const (
	// authFailBurst is how many rejected tokens a client may send at once.
	authFailBurst = 10
	// authFailRate is how fast that allowance refills: one rejected token
	// per second.
	authFailRate = rate.Limit(1)
	// maxAuthClients bounds the clients tracked at once (≈ 200 bytes each).
	maxAuthClients = 10_000
)

// failLimiter rate-limits failed authentication per client (an IPv4
// address, or the /64 of an IPv6 one): a client whose allowance is spent
// gets 429 with Retry-After before its token is even verified, so rejected
// tokens cannot make the server spend its CPU on signature checks. Valid
// tokens do not spend the allowance. A client that stays quiet for
// burst/rate (10 s) is forgotten. Safe for concurrent use.
type failLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*rate.Limiter
}

func newFailLimiter() *failLimiter {
	return &failLimiter{now: time.Now, clients: map[netip.Prefix]*rate.Limiter{}}
}

// wait returns how long client must wait before its next attempt; 0 when
// it may try now. With maxAuthClients clients that all failed recently, an
// unknown client waits too (one second): the server is under attack from
// many addresses.
func (f *failLimiter) wait(client netip.Prefix) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[client]
	if !ok {
		if len(f.clients) >= maxAuthClients && !f.sweep() {
			return time.Second
		}
		return 0
	}
	tokens := l.TokensAt(f.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(authFailRate) * float64(time.Second)))
}

// fail spends one attempt of client's allowance.
func (f *failLimiter) fail(client netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[client]
	if !ok {
		if len(f.clients) >= maxAuthClients && !f.sweep() {
			return
		}
		l = rate.NewLimiter(authFailRate, authFailBurst)
		f.clients[client] = l
	}
	l.AllowN(f.now(), 1)
}

// sweep forgets clients whose allowance is whole again (they are as new);
// it reports whether there is room for another client. Called with mu held.
func (f *failLimiter) sweep() bool {
	now := f.now()
	for c, l := range f.clients {
		if l.TokensAt(now) >= authFailBurst {
			delete(f.clients, c)
		}
	}
	return len(f.clients) < maxAuthClients
}

// clientKey returns the rate-limit key of r's client: its address (the
// TCP peer, or with trusted proxies the last X-Forwarded-For address that
// is not one of them), IPv6 reduced to its /64 (one subscriber's block).
// ok is false when no address can be read.
func clientKey(r *http.Request, trusted []netip.Prefix) (netip.Prefix, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap()
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: keep the last address that was sure
			}
			addr = a.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p, true
	}
	return netip.PrefixFrom(addr, 32), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
