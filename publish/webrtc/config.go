package webrtc

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"
)

// Config configures the sink. The zero value is a working production profile:
// host candidates on every non-loopback interface, no STUN/TURN, no token,
// 16 viewers, 256 queued messages per viewer.
type Config struct {
	// ICEServers are STUN/TURN URLs ("stun:host:3478"). None by default: a
	// dashboard on the same LAN needs only host candidates, and the daemon
	// then sends nothing to a third party.
	ICEServers []string
	// Token, when set, is required as "Authorization: Bearer <Token>" on
	// every signalling request.
	Token string

	// Loopback is the test profile (docs/browser-tests.md): gather
	// only a 127.0.0.1 UDP4 candidate on lo, mDNS off, and strip every
	// non-loopback candidate from offers. Interfaces and Networks are ignored.
	Loopback bool
	// Interfaces limits host candidates to these interface names (e.g.
	// "eth0"); empty means every interface that is up (loopback excluded).
	Interfaces []string
	// Networks limits host candidates to addresses in these CIDR prefixes
	// (e.g. "192.168.1.0/24"); empty means any address.
	Networks []string
	// IPv6 also gathers UDP6 candidates (production profile only).
	IPv6 bool
	// PortMin/PortMax bound the local UDP ports (0: any), for firewalls.
	PortMin, PortMax uint16

	// MaxViewers bounds concurrent viewers (default 16); more get 503.
	MaxViewers int
	// ViewerBuffer is each viewer's queue, in messages (default 256). When a
	// viewer's queue is full its oldest message is dropped and counted.
	ViewerBuffer int
	// MaxBufferedBytes is the high-water mark of a data channel's send
	// buffer (default 1 MiB): above it the viewer's sender waits for
	// OnBufferedAmountLow and messages wait (then drop) in its queue.
	MaxBufferedBytes uint64
	// ConnectTimeout bounds ICE gathering for the answer and the time a new
	// viewer has to open its "trees" channel (default 15 s).
	ConnectTimeout time.Duration
	// DisconnectTimeout is how long an ICE connection may be silent before a
	// viewer is considered gone (default 5 s; failed and removed after twice that).
	DisconnectTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxViewers <= 0 {
		c.MaxViewers = 16
	}
	if c.ViewerBuffer <= 0 {
		c.ViewerBuffer = 256
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = 1 << 20
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if c.DisconnectTimeout <= 0 {
		c.DisconnectTimeout = 5 * time.Second
	}
	return c
}

// api builds the pion API for the configured candidate profile.
func (c Config) api() (*pion.API, []pion.ICEServer, error) {
	var servers []pion.ICEServer
	for _, u := range c.ICEServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") &&
			!strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return nil, nil, fmt.Errorf("webrtc: ICE server %q: want a stun:, stuns:, turn: or turns: URL", u)
		}
		servers = append(servers, pion.ICEServer{URLs: []string{u}})
	}
	var s pion.SettingEngine
	// mDNS off in both profiles: host candidates carry plain IPs, and nothing
	// is multicast on the LAN (remote .local candidates are discarded; the
	// browser's address is then learnt peer-reflexively).
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetICETimeouts(c.DisconnectTimeout, 2*c.DisconnectTimeout, time.Second)
	if c.PortMin != 0 || c.PortMax != 0 {
		if err := s.SetEphemeralUDPPortRange(c.PortMin, c.PortMax); err != nil {
			return nil, nil, fmt.Errorf("webrtc: UDP port range %d-%d: %w", c.PortMin, c.PortMax, err)
		}
	}
	if c.Loopback {
		if len(servers) > 0 {
			return nil, nil, fmt.Errorf("webrtc: Loopback profile takes no ICE servers (got %d)", len(servers))
		}
		s.SetIncludeLoopbackCandidate(true)
		s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
		s.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		s.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
		return pion.NewAPI(pion.WithSettingEngine(s)), servers, nil
	}
	var prefixes []netip.Prefix
	for _, n := range c.Networks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, nil, fmt.Errorf("webrtc: network %q: want a CIDR prefix like 192.168.1.0/24: %w", n, err)
		}
		prefixes = append(prefixes, p.Masked())
	}
	if len(c.Interfaces) > 0 {
		ifaces := slices.Clone(c.Interfaces)
		s.SetInterfaceFilter(func(name string) bool { return slices.Contains(ifaces, name) })
	}
	if len(prefixes) > 0 {
		s.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				return false
			}
			a = a.Unmap()
			for _, p := range prefixes {
				if p.Contains(a) {
					return true
				}
			}
			return false
		})
	}
	types := []pion.NetworkType{pion.NetworkTypeUDP4}
	if c.IPv6 {
		types = append(types, pion.NetworkTypeUDP6)
	}
	s.SetNetworkTypes(types)
	return pion.NewAPI(pion.WithSettingEngine(s)), servers, nil
}
