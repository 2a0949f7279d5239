package webrtc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	pion "github.com/pion/webrtc/v4"
)

// Path is where Handler serves signalling: POST Path, DELETE Path/<id>.
const Path = "/api/webrtc"

const maxOfferBytes = 64 << 10

var errTooMany = errors.New("too many viewers")

// Handler serves the signalling API (see README.md). Mount it at the root of
// a mux, or for Path and Path+"/":
//
//	mux.Handle(webrtc.Path, h)
//	mux.Handle(webrtc.Path+"/", h)
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.authed(s.offer))
	mux.HandleFunc("DELETE "+Path+"/{id}", s.authed(s.delete))
	return mux
}

func (s *Sink) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="edgemo"`)
				httpError(w, http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer <token>)")
				return
			}
		}
		h(w, r)
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func (s *Sink) offer(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			httpError(w, http.StatusUnsupportedMediaType, "offer must be sent as Content-Type: application/sdp, got "+ct)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "read offer: "+err.Error())
		return
	}
	if len(body) > maxOfferBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("offer larger than %d bytes", maxOfferBytes))
		return
	}
	offer, err := checkOffer(string(body))
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad SDP offer: "+err.Error())
		return
	}
	if s.cfg.Loopback {
		offer = loopbackOnly(offer)
	}
	var cameras []string
	for _, c := range strings.Split(r.URL.Query().Get("camera"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			cameras = append(cameras, c)
		}
	}

	pc, err := s.api.NewPeerConnection(pion.Configuration{ICEServers: s.servers})
	if err != nil {
		s.log.Error("webrtc: new peer connection", "err", err)
		httpError(w, http.StatusInternalServerError, "create peer connection: "+err.Error())
		return
	}
	id := newID()
	ctx, cancel := context.WithCancelCause(s.ctx)
	v := &viewer{
		id: id, cameras: cameras, since: time.Now(), pc: pc,
		q:   newQueue(s.cfg.ViewerBuffer),
		log: s.log, ctx: ctx, cancel: cancel,
		opened: make(chan struct{}), low: make(chan struct{}, 1),
	}
	pc.OnDataChannel(func(dc *pion.DataChannel) { v.onDataChannel(dc, s.cfg.MaxBufferedBytes, func() { s.replayStatus(v) }) })
	pc.OnConnectionStateChange(func(st pion.PeerConnectionState) {
		s.log.Debug("webrtc: peer connection state", "viewer", id, "state", st)
		if st == pion.PeerConnectionStateFailed || st == pion.PeerConnectionStateClosed {
			cancel(fmt.Errorf("%w: %s", errPeerGone, st))
		}
	})
	if err := s.add(v); err != nil {
		cancel(err)
		_ = pc.Close()
		if errors.Is(err, errTooMany) {
			w.Header().Set("Retry-After", "5")
			httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many viewers (max %d)", s.cfg.MaxViewers))
			return
		}
		httpError(w, http.StatusServiceUnavailable, "webrtc sink is closed")
		return
	}
	go v.run(s.cfg.ConnectTimeout, s.cfg.MaxBufferedBytes, s)

	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		cancel(err)
		httpError(w, http.StatusBadRequest, "bad SDP offer: "+err.Error())
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		cancel(err)
		httpError(w, http.StatusBadRequest, "cannot answer this offer: "+err.Error())
		return
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		cancel(err)
		httpError(w, http.StatusInternalServerError, "set local description: "+err.Error())
		return
	}
	t := time.NewTimer(s.cfg.ConnectTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		cancel(errors.New("ICE gathering timed out"))
		httpError(w, http.StatusServiceUnavailable, "ICE gathering timed out")
		return
	case <-r.Context().Done():
		cancel(r.Context().Err())
		return
	case <-ctx.Done():
		httpError(w, http.StatusServiceUnavailable, "viewer closed: "+context.Cause(ctx).Error())
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", Path+"/"+id)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

func (s *Sink) delete(w http.ResponseWriter, r *http.Request) {
	if !s.hangUp(r.PathValue("id")) {
		httpError(w, http.StatusNotFound, "no such viewer")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkOffer parses an offer and checks it asks for a data channel; it
// returns the offer with CRLF line endings.
func checkOffer(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("empty body; POST the browser's offer SDP (pc.localDescription.sdp) as application/sdp")
	}
	if !strings.HasPrefix(raw, "v=0") {
		return "", errors.New(`not SDP: it must start with "v=0"`)
	}
	raw = strings.ReplaceAll(raw, "\r\n", "\n")
	raw = strings.ReplaceAll(raw, "\n", "\r\n") + "\r\n"
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return "", fmt.Errorf("cannot parse SDP: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media == "application" {
			return raw, nil
		}
	}
	return "", fmt.Errorf("the offer has no data channel (m=application); create the %q data channel before createOffer", TreesLabel)
}

// loopbackOnly drops a=candidate lines whose address is not loopback
// (docs/browser-tests.md: Chromium offers the machine's real address too, and pion
// would otherwise probe it).
func loopbackOnly(offer string) string {
	lines := strings.Split(offer, "\r\n")
	out := lines[:0]
	for _, l := range lines {
		if c, ok := strings.CutPrefix(l, "a=candidate:"); ok {
			f := strings.Fields(c)
			// foundation component transport priority address port typ ...
			if len(f) < 5 {
				continue
			}
			a, err := netip.ParseAddr(f[4])
			if err != nil || !a.IsLoopback() {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n")
}
