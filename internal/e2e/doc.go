// Package e2e holds the tests that drive ghas-relay's real binaries as
// separate processes over real sockets: faults across processes (a NATS
// node, a processor, the whole JetStream, the sink going away under load)
// and the project-wide end-to-end run with the fake GitHub. It has no
// production code.
package e2e
