package mqtt

// RetainedTopics lists the retained topics the sink holds (and would
// publish again on a reconnect), in publish order.
func RetainedTopics(s *Sink) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}
