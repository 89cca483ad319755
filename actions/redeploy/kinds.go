package redeploy

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// APIKind is one kind redeploy may apply: its API group, kind and resource.
type APIKind struct {
	Group    string // "" for the core group
	Kind     string
	Resource string // the lowercase plural the API and RBAC use
}

// AllowedKinds are the only kinds redeploy applies, all namespaced. The Helm
// chart's Role (deploy/helm/drbot/templates/rbac.yaml) and the kustomize
// base grant exactly these, with get (plan, verify), create and patch
// (server-side apply of a new object needs both); deploy/deploytest checks
// that the rules and this list agree.
//
// Left out on purpose: Secrets (they do not belong in git, and the bot's
// Role must not read them), RBAC kinds (a commit must not grant rights
// through the bot), cluster-scoped kinds such as Namespace or
// CustomResourceDefinition (the bot's rights are per namespace), and kinds
// whose rollout drbot cannot follow (DaemonSet, Job).
var AllowedKinds = []APIKind{
	{"", "ConfigMap", "configmaps"},
	{"", "PersistentVolumeClaim", "persistentvolumeclaims"},
	{"", "Service", "services"},
	{"", "ServiceAccount", "serviceaccounts"},
	{"apps", "Deployment", "deployments"},
	{"apps", "StatefulSet", "statefulsets"},
	{"autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers"},
	{"batch", "CronJob", "cronjobs"},
	{"networking.k8s.io", "Ingress", "ingresses"},
	{"networking.k8s.io", "NetworkPolicy", "networkpolicies"},
	{"policy", "PodDisruptionBudget", "poddisruptionbudgets"},
}

// allowed returns the allow-list entry of gvk.
func allowed(gvk schema.GroupVersionKind) (APIKind, bool) {
	i := slices.IndexFunc(AllowedKinds, func(k APIKind) bool { return k.Group == gvk.Group && k.Kind == gvk.Kind })
	if i < 0 {
		return APIKind{}, false
	}
	return AllowedKinds[i], true
}

// allowedText lists the allowed kinds for a refusal.
func allowedText() string {
	var out []string
	for _, k := range AllowedKinds {
		out = append(out, k.Kind)
	}
	return strings.Join(out, ", ")
}
