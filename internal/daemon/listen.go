package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Read limits of both listeners. A client that sends its headers or its body
// slower than this is cut off, so slow clients cannot pile up connections
// (and goroutines) until the daemon runs out of them. The largest body either
// listener takes is a WebRTC SDP offer of a few kilobytes. Variables so tests
// can shorten them.
var (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	idleTimeout       = 2 * time.Minute
)

// server is one HTTP listener. Its handler can be swapped while it serves, so
// a reload that changes only what is served (dashboard, WebRTC, pprof) keeps
// the socket, and only a changed address rebinds.
type server struct {
	srv  *http.Server
	ln   net.Listener
	h    atomic.Pointer[http.Handler]
	key  string
	addr string
	log  *slog.Logger
}

// bind takes addr now (so a port in use fails before anything running is
// touched, naming the key); serve starts answering on it.
func bind(key, addr string, h http.Handler, log *slog.Logger) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: another program (or another edgemo) is using it; stop it or set %s to a free port", key, addr, err, key)
	}
	s := &server{ln: ln, key: key, addr: addr, log: log}
	s.setHandler(h)
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS-less scanners and timeouts are not news
	}
	return s, nil
}

func (s *server) serve() {
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener failed", "key", s.key, "addr", s.addr, "err", err)
		}
	}()
}

func (s *server) setHandler(h http.Handler) { s.h.Store(&h) }

// Addr is where the server listens (useful with port 0).
func (s *server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// close stops the server; a bound server that never served is closed too.
func (s *server) close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	s.ln.Close() // Shutdown closes only listeners Serve was given
}

// hostGuard refuses requests whose Host header is a name this daemon was
// not configured under, while no webrtc.token is set. Without a token the
// signalling endpoint is open to whoever can reach it, and DNS rebinding lets
// any web page the operator visits reach a loopback listener under the
// attacker's own name (Host: evil.example). Allowed: IP literals (a
// rebinding attack always arrives under a name), localhost and *.localhost,
// the configured listen host, and this machine's host name (and .local).
// With a token set, the token is the guard and any Host is served.
func hostGuard(listen, token string, next http.Handler) http.Handler {
	if token != "" {
		return next
	}
	allowed := map[string]bool{"localhost": true}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		allowed[strings.ToLower(h)] = true
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = strings.ToLower(h)
		allowed[h], allowed[h+".local"] = true, true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		if allowed[host] || strings.HasSuffix(host, ".localhost") || net.ParseIP(host) != nil {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, fmt.Sprintf("Host %q is not a name this edgemo serves (a DNS-rebinding defence while webrtc.token is unset): open it by IP address or localhost, or set webrtc.token", r.Host), http.StatusForbidden)
	})
}

// loopbackOnly reports whether a listen address accepts only local
// connections: a loopback IP or localhost. An empty host or 0.0.0.0/:: is
// every interface.
func loopbackOnly(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// warnExposure logs, when a listener is (re)bound, what another machine on
// the network could reach: the dashboard and signalling without a token, or
// pprof (heap contents, CPU profiles on demand).
func warnExposure(log *slog.Logger, key, addr string, token string, pprof bool) {
	if loopbackOnly(addr) {
		return
	}
	switch {
	case key == "http.listen" && token == "":
		log.Warn("the dashboard and WebRTC signalling listen beyond this machine without a token: anyone on the network sees the faces' trees; set webrtc.token or listen on 127.0.0.1",
			"key", key, "addr", addr)
	case key == "metrics.listen" && pprof:
		log.Warn("pprof is on and the metrics listener is reachable from the network: anyone there can read profiles and the heap; set metrics.pprof: false or listen on 127.0.0.1",
			"key", key, "addr", addr)
	}
}
