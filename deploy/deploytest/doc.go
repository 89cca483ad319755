// Package deploytest holds the tests of drbot's deploy files: the Helm chart
// (deploy/helm/drbot), the kustomize base and overlays (deploy/kustomize) and
// the Dockerfile. It has no code of its own.
package deploytest
