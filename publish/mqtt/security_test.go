package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// pki is a test CA and a server certificate for 127.0.0.1 it signed.
type pki struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newPKI(t *testing.T, dir, name string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p := pki{
		caFile:   filepath.Join(dir, name+"-ca.pem"),
		certFile: filepath.Join(dir, name+"-server.pem"),
		keyFile:  filepath.Join(dir, name+"-server.key"),
		pool:     x509.NewCertPool(),
	}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", srvDER)
	writePEM(t, p.keyFile, "PRIVATE KEY", keyDER)
	p.pool.AddCert(ca)
	return p
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	good := newPKI(t, dir, "good")
	other := newPKI(t, dir, "other")
	mq := mqtttest.StartMosquitto(t, "cafile "+good.caFile, "certfile "+good.certFile, "keyfile "+good.keyFile)
	url := "ssl://" + mq.Addr()
	sub := mqtttest.Subscribe(t, url, mqtttest.SubOptions{TLS: &tls.Config{RootCAs: good.pool}}, "edgemo/#")

	t.Run("right CA", func(t *testing.T) {
		s, _ := newSink(t, mqtt.Config{Broker: url, TLS: mqtt.TLS{CAFile: good.caFile}})
		waitConnected(t, s)
		if err := s.Publish(context.Background(), sampleTree("cam1", 3, 1)); err != nil {
			t.Fatal(err)
		}
		sub.WaitTopic(wait, "edgemo/cam1/3/tree", nil)
	})
	t.Run("wrong CA", func(t *testing.T) {
		s, _ := newSink(t, mqtt.Config{Broker: url, TLS: mqtt.TLS{CAFile: other.caFile}})
		err := connectErr(t, s)
		if err == nil {
			t.Fatal("connected with a CA that did not sign the broker's certificate")
		}
		for _, want := range []string{url, "TLS certificate not trusted", "mqtt.tls.ca"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("plain tcp to a TLS port", func(t *testing.T) {
		s, _ := newSink(t, mqtt.Config{Broker: "tcp://" + mq.Addr(), ConnectTimeout: time.Second})
		if err := connectErr(t, s); err == nil {
			t.Fatal("plain MQTT connected to a TLS listener")
		}
	})
	t.Run("TLS to a plain port", func(t *testing.T) {
		plain := mqtttest.StartMosquitto(t)
		s, _ := newSink(t, mqtt.Config{Broker: "ssl://" + plain.Addr(), TLS: mqtt.TLS{CAFile: good.caFile}})
		err := connectErr(t, s)
		if err == nil || !strings.Contains(err.Error(), "plain listener") || !strings.Contains(err.Error(), "tcp://") {
			t.Fatalf("err = %v, want a hint that the port is plain (use tcp://)", err)
		}
	})
	t.Run("bad files fail at New", func(t *testing.T) {
		garbage := filepath.Join(dir, "garbage.pem")
		_ = os.WriteFile(garbage, []byte("not a certificate"), 0o600)
		cases := map[string]struct {
			tls  mqtt.TLS
			url  string
			want []string
		}{
			"missing CA":   {mqtt.TLS{CAFile: filepath.Join(dir, "nope.pem")}, url, []string{"nope.pem", "mqtt.tls.ca"}},
			"CA not PEM":   {mqtt.TLS{CAFile: garbage}, url, []string{"garbage.pem", "no PEM certificate"}},
			"cert no key":  {mqtt.TLS{CertFile: good.certFile}, url, []string{"mqtt.tls.key"}},
			"key mismatch": {mqtt.TLS{CertFile: good.certFile, KeyFile: other.keyFile}, url, []string{"load client certificate", "match"}},
			"TLS on tcp":   {mqtt.TLS{CAFile: good.caFile}, "tcp://" + mq.Addr(), []string{"not encrypted", "ssl://"}},
		}
		for name, c := range cases {
			_, err := mqtt.New(mqtt.Config{Broker: c.url, TLS: c.tls}, nil)
			if err == nil {
				t.Errorf("%s: New accepted it", name)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", name, err, w)
				}
			}
		}
	})
}

func TestUsernamePassword(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", pw, "edgemo", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	mq := mqtttest.StartMosquitto(t, "allow_anonymous false", "password_file "+pw)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{Username: "edgemo", Password: "s3cret"}, "edgemo/#")

	t.Run("right credentials from the environment", func(t *testing.T) {
		t.Setenv(mqtt.EnvUsername, "edgemo")
		t.Setenv(mqtt.EnvPassword, "s3cret")
		s, _ := newSink(t, mqtt.Config{Broker: mq.URL()})
		waitConnected(t, s)
		if err := s.Publish(context.Background(), sampleTree("cam1", 5, 1)); err != nil {
			t.Fatal(err)
		}
		sub.WaitTopic(wait, "edgemo/cam1/5/tree", nil)
	})
	t.Run("wrong password", func(t *testing.T) {
		s, _ := newSink(t, mqtt.Config{Broker: mq.URL(), Username: "edgemo", Password: "wrong"})
		err := connectErr(t, s)
		if err == nil {
			t.Fatal("connected with a wrong password")
		}
		for _, want := range []string{mq.URL(), "refused the login", `"edgemo"`, "mqtt.password", mqtt.EnvPassword} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q leaks the password", err)
		}
	})
	t.Run("anonymous refused", func(t *testing.T) {
		t.Setenv(mqtt.EnvUsername, "")
		t.Setenv(mqtt.EnvPassword, "")
		s, _ := newSink(t, mqtt.Config{Broker: mq.URL()})
		if err := connectErr(t, s); err == nil || !strings.Contains(err.Error(), "refused the login") {
			t.Fatalf("err = %v, want a refused login", err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	cases := map[string]struct {
		cfg  mqtt.Config
		want string
	}{
		"no broker":         {mqtt.Config{}, "no broker URL"},
		"not a URL":         {mqtt.Config{Broker: "192.168.1.10:1883"}, "tcp://host:1883"},
		"bad scheme":        {mqtt.Config{Broker: "http://x:1883"}, `scheme "http"`},
		"qos 3":             {mqtt.Config{Broker: "tcp://x", QoS: intp(3)}, "use 0, 1 or 2"},
		"prefix wildcard":   {mqtt.Config{Broker: "tcp://x", TopicPrefix: "a/#"}, "mqtt.topic_prefix"},
		"camera with slash": {mqtt.Config{Broker: "tcp://x", Cameras: []string{"a/b"}}, "letters, digits"},
		"bad node id":       {mqtt.Config{Broker: "tcp://x", NodeID: "a b"}, "node id"},
		"negative queue":    {mqtt.Config{Broker: "tcp://x", QueueSize: -1}, "mqtt.queue_size"},
		"password only":     {mqtt.Config{Broker: "tcp://x", Password: "p"}, "no username"},
	}
	t.Setenv(mqtt.EnvUsername, "")
	for name, c := range cases {
		_, err := mqtt.New(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
	// Defaults: port added, prefix edgemo, unique client ids.
	a, err := mqtt.New(mqtt.Config{Broker: "mqtt://broker.lan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.AvailableTopic() != "edgemo/available" {
		t.Errorf("AvailableTopic() = %q", a.AvailableTopic())
	}
	for _, ok := range []string{"tcp://h:1", "ssl://h", "tls://h:8883", "ws://h:9001/mqtt", "wss://h/mqtt"} {
		if _, err := mqtt.New(mqtt.Config{Broker: ok}, nil); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// Two sinks with default client ids on one broker do not kick each other off.
func TestDefaultClientIDsAreUnique(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	a, _ := newSink(t, mqtt.Config{Broker: mq.URL(), TopicPrefix: "edgemo-a"})
	b, _ := newSink(t, mqtt.Config{Broker: mq.URL(), TopicPrefix: "edgemo-b"})
	waitConnected(t, a)
	waitConnected(t, b)
	time.Sleep(300 * time.Millisecond)
	if !a.Connected() || !b.Connected() {
		t.Fatalf("connected a=%v b=%v: default client ids collided", a.Connected(), b.Connected())
	}
	if strings.Count(mq.Logs(), "New client connected") != 2 {
		t.Errorf("want exactly 2 connections (no takeover loop):\n%s", mq.Logs())
	}
}

// connectErr waits for the sink's first failed connection attempt and
// returns its error (nil if it connected instead).
func connectErr(t *testing.T, s *mqtt.Sink) error {
	t.Helper()
	eventually(t, wait, "a connection attempt", func() bool { return s.Connected() || s.LastError() != nil })
	if s.Connected() {
		return nil
	}
	t.Logf("connection error: %v", s.LastError())
	return s.LastError()
}
