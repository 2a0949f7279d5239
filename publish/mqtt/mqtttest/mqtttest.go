// Package mqtttest runs real brokers and clients for edgemo's MQTT tests: a
// mosquitto process on a free loopback port (killable and restartable on the
// same port), a TCP proxy whose connections a test can cut abruptly, and a
// paho subscriber that records what arrives. Nothing here is a mock.
package mqtttest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MosquittoBin is the broker the tests run (Debian's mosquitto package).
const MosquittoBin = "/usr/sbin/mosquitto"

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Mosquitto is one mosquitto process with a temp config (no persistence).
type Mosquitto struct {
	t     testing.TB
	Port  int
	Dir   string
	conf  string
	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan struct{}
	logs  lockedBuffer
	extra []string
}

// StartMosquitto starts mosquitto on a free loopback port, with anonymous
// access unless extra sets allow_anonymous; extra lines follow the listener
// line (so listener options such as certfile apply to it). The process is
// killed when the test ends.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	if _, err := os.Stat(MosquittoBin); err != nil {
		t.Fatalf("mosquitto is needed for the MQTT tests: %v (install it: apt-get install mosquitto, or run scripts/setup.sh --test)", err)
	}
	m := &Mosquitto{t: t, Port: FreePort(t), Dir: t.TempDir(), extra: extra}
	m.conf = filepath.Join(m.Dir, "mosquitto.conf")
	lines := []string{
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"max_queued_messages 1000000", // a slow test subscriber must not lose messages in the broker (0, "unlimited", stalls delivery in 2.0.11)
	}
	if !strings.Contains(strings.Join(extra, "\n"), "allow_anonymous") {
		lines = append(lines, "allow_anonymous true")
	}
	if os.Geteuid() == 0 {
		lines = append(lines, "user root") // else it drops to user mosquitto and cannot read the temp dir
	}
	lines = append(lines, fmt.Sprintf("listener %d 127.0.0.1", m.Port))
	lines = append(lines, extra...)
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.logs.String())
		}
	})
	m.Start()
	return m
}

// Addr is 127.0.0.1:<port>.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.Port) }

// URL is tcp://127.0.0.1:<port>.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr() }

// Start (re)starts mosquitto on its port and waits until it accepts
// connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("mosquitto already running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command(MosquittoBin, "-c", m.conf)
		cmd.Stdout, cmd.Stderr = &m.logs, &m.logs
		if err := cmd.Start(); err != nil {
			m.t.Fatalf("start mosquitto: %v", err)
		}
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exit) }()
		for time.Now().Before(deadline) {
			select {
			case <-exit: // e.g. the port is still held by the previous process: try again
			default:
				if c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond); err == nil {
					c.Close()
					m.cmd, m.exit = cmd, exit
					return
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		select {
		case <-exit:
		default:
			_ = cmd.Process.Kill()
			<-exit
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not start on %s:\n%s", m.Addr(), m.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL (no clean shutdown: clients see their connection die)
// and waits for the process to go.
func (m *Mosquitto) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exit
	m.cmd = nil
}

// Stop sends SIGTERM (a clean shutdown: with persistence configured,
// mosquitto saves its sessions and queued messages) and waits for it to go.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.exit
	m.cmd = nil
}

// Logs is what mosquitto printed so far.
func (m *Mosquitto) Logs() string { return m.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
