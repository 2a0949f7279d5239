// Package web embeds the live dashboard: a plain HTML/JS/CSS page that
// connects to the WebRTC sink (publish/webrtc) and shows every camera's faces
// with their current emotion tree and a timeline. Nothing is built at run
// time and the page loads no external assets.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// FS is the dashboard's files (index.html, app.js, strip.js, style.css;
// site.html, site.js, site.css, mqttws.js: every instance of a site) at its root.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// csp allows only this origin: no CDN, no web font, no beacon can load even
// if a future edit adds one.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// siteCSP is csp plus WebSocket connections for site.html, which reads the
// central broker over MQTT-over-WebSockets (another origin than this page).
const siteCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard at "/" (index.html) and its assets. Mount it
// at the root of a mux next to the signalling handler (webrtc.Path).
func Handler() http.Handler {
	files := http.FileServerFS(FS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.URL.Path == "/site.html" {
			h.Set("Content-Security-Policy", siteCSP)
		} else {
			h.Set("Content-Security-Policy", csp)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
