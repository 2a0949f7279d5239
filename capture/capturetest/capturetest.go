// Package capturetest holds stand-ins for cameras that capture's tests and
// the daemon's share. Test support only: nothing outside _test.go files
// imports it.
package capturetest

import (
	"net"
	"sync"
	"testing"
)

// SilentServer accepts TCP connections on loopback and never sends a byte,
// like a camera whose firmware hangs after accept, or an RTSP/HTTP server
// gone silent. Connections stay open until stop (also run at cleanup).
func SilentServer(t testing.TB) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}
