// The pod sandbox's only process: it holds the pod's namespaces, reaps orphans (it is PID 1 of the
// pod when the pod shares its PID namespace) and exits on SIGINT/SIGTERM. The harness builds it into
// the sandbox image of its nodes, because no registry (and so no registry.k8s.io/pause) is reachable.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
