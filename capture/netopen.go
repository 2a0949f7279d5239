package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Why a network open has two steps.
//
// A network open used to go through OpenCV 4.6's FFmpeg backend, which
// holds one process-wide mutex for the whole of every open, network waits
// included: a camera that accepted the connection and never answered
// stalled every other camera's (re)connect (measured: a good camera's open
// started 0.3 s after a hanging one's took 2.75 s). Streams now open
// through avdec.cpp, which holds no lock, but the probe stays first: it
// speaks just enough of the protocol, in Go, to get a first reply, is
// bounded by ReadTimeout and ends at once when ctx does (Close, daemon
// shutdown), so a silent or refusing camera fails fast with a reason of
// its own. Only a camera that answered is handed to FFmpeg, whose open and
// reads are bounded per stream by its interrupt callback (ReadTimeout).

// openNetwork probes an RTSP or HTTP source and, if it answers, opens it
// with the FFmpeg backend, open and reads bounded by s.cfg.ReadTimeout.
func (s *Source) openNetwork(ctx context.Context) (videoCapture, error) {
	t0 := time.Now()
	if err := probe(ctx, s.kind, s.name, s.cfg.ReadTimeout); err != nil {
		return nil, err
	}
	probed := time.Since(t0)
	vc, err := openAvStream(s.name, s.cfg.avOptions(), s.cfg.ReadTimeout, s.cfg.ReadTimeout)
	s.log.Debug("network open", "probe", probed, "open", time.Since(t0)-probed, "ok", err == nil)
	if err != nil {
		return nil, errors.New(scrubPassword(err.Error(), s.name))
	}
	return vc, nil
}

// scrubPassword masks the password of URL raw wherever msg repeats it (an
// OpenCV exception's text may quote the URL it was given).
func scrubPassword(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

// probeTLS skips certificate checks, as FFmpeg does by default
// (tls_verify=0), so the probe never rejects a camera that OpenCV would
// accept. The probe sends no credentials and reads one reply.
var probeTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // liveness check only; see above

var probeClient = &http.Client{Transport: &http.Transport{
	Proxy:             http.ProxyFromEnvironment, // FFmpeg honours http_proxy too
	TLSClientConfig:   probeTLS,
	DisableKeepAlives: true,
}}

// probe reports whether the camera at raw (an rtsp(s):// or http(s)://
// URL) answers within timeout: for HTTP, response headers and, for a 2xx
// answer, the first byte of the body; for RTSP, the first bytes of the
// reply to OPTIONS. Any answer counts, an error status included (OpenCV
// then fails fast and says why); only silence, a refused connection or a
// reply that is not the protocol is an error. Credentials in raw are
// never sent.
func probe(ctx context.Context, k Kind, raw string, timeout time.Duration) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	u.User = nil
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch k {
	case KindHTTP:
		err = probeHTTP(ctx, u)
	case KindRTSP:
		err = probeRTSP(ctx, u)
	default:
		return nil
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v (ReadTimeout): %w", timeout, err)
	}
	return err
}

func probeHTTP(ctx context.Context, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		var ue *url.Error // its text repeats the URL, which the caller names already
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil // it answers; OpenCV reports the status
	}
	// A stream's headers can come before a hung encoder's first frame:
	// wait for one byte of it.
	var b [1]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("headers but no data: %w", err)
	}
	return nil
}

func probeRTSP(ctx context.Context, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return err
	}
	defer conn.Close()
	// Cancelling ctx (Close, shutdown, timeout) unblocks the reads below.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if u.Scheme == "rtsps" {
		tc := tls.Client(conn, probeTLS.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	if _, err := fmt.Fprintf(conn, "OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: edgemo\r\n\r\n", u.String()); err != nil {
		return err
	}
	var b [5]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if !strings.EqualFold(string(b[:]), "RTSP/") {
		return fmt.Errorf("the reply to OPTIONS starts %q, not RTSP/: is this an RTSP port?", b[:])
	}
	return nil
}
