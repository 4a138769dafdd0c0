//go:build tools

// Package e2e pins the kube-apiserver command so that `go mod tidy` in this
// module keeps k8s.io/kubernetes and everything it needs. Nothing here is
// compiled into tdctl; see .ci/k8s-e2e-setup.sh for how it is built.
package e2e

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
