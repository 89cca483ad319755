package deploytest

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/actions/actiontest"
	"github.com/drbot-dev/drbot/actions/diagnose"
	"github.com/drbot-dev/drbot/actions/kube"
	"github.com/drbot-dev/drbot/actions/redeploy"
	"github.com/drbot-dev/drbot/actions/redeploy/redeploytest"
	"github.com/drbot-dev/drbot/runbook"
)

// TestRBACCoversKubeActions drives every Kubernetes call drbot's actions make
// (actions/kube's client: plan, scale, rollout restart, rollout status, ready
// pods; actions/diagnose: pods, their logs and claims, the namespace's PVCs; redeploy's dynamic client: plan, server-side apply of one object of
// every allowed kind, rollout, verify) against client-go's fakes, records
// the (resource, verb) pairs, and checks that the chart's Role grants
// exactly those: a new call without its rule fails here, and so does a rule
// no call needs.
func TestRBACCoversKubeActions(t *testing.T) {
	ctx := context.Background()
	const ns = "shop"
	labels := map[string]string{"app": "web"}
	two := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Generation: 1, Labels: labels},
		Spec:       appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2},
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns, Generation: 1, Labels: labels},
		Spec:       appsv1.StatefulSetSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		Status:     appsv1.StatefulSetStatus{ObservedGeneration: 5, Replicas: 2, ReadyReplicas: 2, UpdatedReplicas: 2, CurrentReplicas: 2, CurrentRevision: "r1", UpdateRevision: "r1"},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns, Labels: labels},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	// What diagnose looks at: a crashing pod that mounts a claim (its logs
	// and the claim are read), and the namespace's claims.
	crashing := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns, Labels: map[string]string{"app": "postgresql"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-0"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "postgres", RestartCount: 3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}},
		}}},
	}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-db-0", Namespace: ns}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	cs := fake.NewClientset(dep, sts, pod, crashing, claim)
	c := kube.New(cs)
	c.Poll = time.Millisecond
	c.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

	for _, ref := range []runbook.WorkloadRef{
		{Kind: runbook.KindDeployment, Name: "web"},
		{Kind: runbook.KindStatefulSet, Name: "db"},
	} {
		w, err := c.Get(ctx, ns, ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Scale(ctx, ns, ref, 3); err != nil {
			t.Fatalf("scale %s: %v", ref, err)
		}
		if err := c.ScaleFrom(ctx, ns, ref, 3, 2); err != nil {
			t.Fatalf("scale from %s: %v", ref, err)
		}
		if _, err := c.RolloutRestart(ctx, ns, ref); err != nil {
			t.Fatalf("restart %s: %v", ref, err)
		}
		if _, err := c.RolloutStatus(ctx, ns, ref); err != nil {
			t.Fatalf("status %s: %v", ref, err)
		}
		if _, _, err := c.PodsReady(ctx, ns, w.Selector); err != nil {
			t.Fatalf("pods %s: %v", ref, err)
		}
	}

	// diagnose (actions/diagnose): pods with their logs and claims, and PVCs.
	fs := diagnose.Pods(ctx, cs, ns, "app=postgresql", nil)
	if len(fs) != 2 || len(fs[1].Logs) == 0 || !strings.Contains(fs[1].Detail, "claim data-db-0 Pending") {
		t.Fatalf("diagnose pods = %+v", fs)
	}
	if fs := diagnose.PVCs(ctx, cs, ns); len(fs) != 2 {
		t.Fatalf("diagnose PVCs = %+v", fs)
	}

	used := map[string]map[string]bool{} // group/resource[/sub] -> verbs
	for _, a := range append(cs.Actions(), redeployCalls(t, ns)...) {
		if a.GetNamespace() != ns {
			t.Errorf("a call outside the target namespace: %s %s in %q", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
		}
		res := a.GetResource().Group + "/" + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		if used[res] == nil {
			used[res] = map[string]bool{}
		}
		used[res][a.GetVerb()] = true
		// A server-side apply is a patch; the API server also asks for
		// create when the object is new (redeploy creates objects).
		if p, ok := a.(k8stesting.PatchAction); ok && p.GetPatchType() == types.ApplyPatchType {
			used[res]["create"] = true
		}
	}
	granted := map[string]map[string]bool{}
	for _, r := range wantRules(true) {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if granted[g+"/"+res] == nil {
					granted[g+"/"+res] = map[string]bool{}
				}
				for _, v := range r.Verbs {
					granted[g+"/"+res][v] = true
				}
			}
		}
	}
	if got, want := flatten(used), flatten(granted); !equalStrings(got, want) {
		t.Errorf("the actions call %v; the Role grants %v", got, want)
	}
}

func flatten(m map[string]map[string]bool) []string {
	var out []string
	for res, verbs := range m {
		for v := range verbs {
			out = append(out, res+" "+v)
		}
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// allKinds is a kustomization with one object of every kind redeploy applies.
var allKinds = map[string]string{
	"app/kustomization.yaml": "resources: [objects.yaml]\n",
	"app/objects.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {A: "1"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:2}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db:2}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: report:1}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules: [{host: web.example.com}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
`,
}

// redeployCalls runs a redeploy of every allowed kind into namespace (plan,
// execute, verify) and returns the calls it made to the fake cluster.
func redeployCalls(t *testing.T, namespace string) []k8stesting.Action {
	t.Helper()
	ctx := context.Background()
	repo := redeploytest.NewRepo(t)
	repo.Commit("every kind", allKinds)
	if n := strings.Count(allKinds["app/objects.yaml"], "\nkind: "); n != len(redeploy.AllowedKinds) {
		t.Fatalf("the kustomization has %d objects for %d allowed kinds", n, len(redeploy.AllowedKinds))
	}
	cfg, err := runbook.Parse("rbac.yaml", []byte(`
slack: {approvers: [UBOB]}
services:
  - name: web
    kubernetes:
      namespace: `+namespace+`
      selector: app=web
      source: {repo: `+repo.URL()+`, ref: main, path: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	cluster := redeploytest.NewCluster(t, 5*time.Millisecond)
	a := redeploy.New(cfg, cluster)
	a.Poll, a.Timeout = 5*time.Millisecond, 20*time.Second
	p, err := a.Plan(ctx, actions.Params{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Execute(ctx, p, actiontest.NewJournal()); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Verify(ctx, p)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	return cluster.Actions()
}
