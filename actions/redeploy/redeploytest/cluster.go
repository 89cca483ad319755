// Package redeploytest holds test parts for redeploy: a simulated cluster
// behind client-go's fake dynamic client, and real git repositories made
// with the git binary.
//
// The cluster is client-go's fake dynamic client whose reactions go to
// client-go's field-managed object tracker (the one fake.NewClientset uses),
// so a server-side apply really creates, merges and records field owners.
// What the API server and the controllers would do besides is simulated:
//
//   - an apply that changes a Deployment's or StatefulSet's spec bumps
//     metadata.generation (1 on create);
//   - a controller goroutine observes the new generation and rolls the
//     workload out one replica per tick, keeping one pod per replica with
//     the Ready condition, labelled with the workload's selector.
//
// A workload can be made to hang (never observed), per name.
package redeploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/applyconfigurations"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
)

// Cluster is a fake dynamic client with a simulated API server and
// controllers.
type Cluster struct {
	*dynfake.FakeDynamicClient
	tracker k8stesting.ObjectTracker

	mu   sync.Mutex
	hang map[string]bool // namespace/name
}

var (
	deployments  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulsets = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	pods         = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// NewCluster returns a cluster holding objs (typed objects of client-go's
// scheme), whose controller runs every tick until t ends.
func NewCluster(t testing.TB, tick time.Duration, objs ...runtime.Object) *Cluster {
	t.Helper()
	sch := scheme.Scheme
	codecs := serializer.NewCodecFactory(sch)
	tr := k8stesting.NewFieldManagedObjectTracker(sch, codecs.UniversalDecoder(), applyconfigurations.NewTypeConverter(sch))
	for _, o := range objs {
		if err := tr.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{FakeDynamicClient: dynfake.NewSimpleDynamicClientWithCustomListKinds(sch, nil), tracker: tr, hang: map[string]bool{}}
	react := k8stesting.ObjectReaction(tr)
	c.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p, ok := a.(k8stesting.PatchActionImpl)
		gvr := a.GetResource()
		if !ok || (gvr != deployments && gvr != statefulsets) {
			return react(a)
		}
		return c.patchWorkload(p, react)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				c.Step()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// Tracker returns the object tracker behind the client (typed objects).
func (c *Cluster) Tracker() k8stesting.ObjectTracker { return c.tracker }

// Hang makes the controller never observe namespace/name (its rollout
// never completes) while on is true.
func (c *Cluster) Hang(namespace, name string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hang[namespace+"/"+name] = on
}

func (c *Cluster) hung(namespace, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hang[namespace+"/"+name]
}

// patchWorkload is the API server's part for workloads: a spec change
// bumps the generation, the status is kept. It runs inside the fake's
// lock, so the read-modify-write is atomic.
func (c *Cluster) patchWorkload(p k8stesting.PatchActionImpl, react k8stesting.ReactionFunc) (bool, runtime.Object, error) {
	gvr, ns, name := p.GetResource(), p.GetNamespace(), p.GetName()
	old, err := c.tracker.Get(gvr, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return true, nil, err
	}
	handled, obj, err := react(p)
	if !handled || err != nil {
		return handled, obj, err
	}
	cur, err := c.tracker.Get(gvr, ns, name)
	if err != nil {
		return true, nil, err
	}
	switch n := cur.(type) {
	case *appsv1.Deployment:
		n.Generation = 1
		if o, ok := old.(*appsv1.Deployment); ok {
			n.Status, n.Generation = o.Status, o.Generation
			if !reflect.DeepEqual(o.Spec, n.Spec) {
				n.Generation++
			}
		}
	case *appsv1.StatefulSet:
		n.Generation = 1
		if o, ok := old.(*appsv1.StatefulSet); ok {
			n.Status, n.Generation = o.Status, o.Generation
			if !reflect.DeepEqual(o.Spec, n.Spec) {
				n.Generation++
			}
		}
	}
	if err := c.tracker.Update(gvr, cur, ns, metav1.UpdateOptions{FieldManager: "kube-apiserver"}); err != nil {
		return true, nil, err
	}
	out, err := c.tracker.Get(gvr, ns, name)
	return true, out, err
}

// Step runs one controller pass over every workload. It holds the fake's
// lock, which the fake also holds while it runs reactors, so a pass never
// writes back a workload an apply changed meanwhile.
func (c *Cluster) Step() {
	c.Lock()
	defer c.Unlock()
	if l, err := c.tracker.List(deployments, appsv1.SchemeGroupVersion.WithKind("Deployment"), ""); err == nil {
		for _, d := range l.(*appsv1.DeploymentList).Items {
			c.stepDeployment(&d)
		}
	}
	if l, err := c.tracker.List(statefulsets, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), ""); err == nil {
		for _, s := range l.(*appsv1.StatefulSetList).Items {
			c.stepStatefulSet(&s)
		}
	}
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func (c *Cluster) stepDeployment(d *appsv1.Deployment) {
	if c.hung(d.Namespace, d.Name) {
		return
	}
	r := replicas(d.Spec.Replicas)
	s := d.Status
	if s.ObservedGeneration < d.Generation {
		s.ObservedGeneration = d.Generation
		s.UpdatedReplicas, s.AvailableReplicas = 0, 0
	} else {
		switch {
		case s.UpdatedReplicas < r:
			s.UpdatedReplicas++
		case s.UpdatedReplicas > r:
			s.UpdatedReplicas = r
		case s.AvailableReplicas < s.UpdatedReplicas:
			s.AvailableReplicas = s.UpdatedReplicas
		}
		s.Replicas = r
		s.ReadyReplicas = s.AvailableReplicas
	}
	c.syncPods(d.Namespace, d.Name, selectorLabels(d.Spec.Selector, d.Spec.Template.Labels), int(r), int(s.AvailableReplicas))
	if !reflect.DeepEqual(s, d.Status) {
		d.Status = s
		_ = c.tracker.Update(deployments, d, d.Namespace, metav1.UpdateOptions{FieldManager: "deployment-controller"})
	}
}

func (c *Cluster) stepStatefulSet(st *appsv1.StatefulSet) {
	if c.hung(st.Namespace, st.Name) {
		return
	}
	r := replicas(st.Spec.Replicas)
	s := st.Status
	if s.ObservedGeneration < st.Generation {
		s.ObservedGeneration = st.Generation
		s.UpdateRevision = fmt.Sprintf("%s-%d", st.Name, st.Generation)
		s.UpdatedReplicas, s.ReadyReplicas = 0, 0
	} else {
		switch {
		case s.UpdatedReplicas < r:
			s.UpdatedReplicas++
			s.ReadyReplicas = s.UpdatedReplicas
		default:
			s.CurrentRevision, s.CurrentReplicas = s.UpdateRevision, r
		}
		s.Replicas = r
		s.AvailableReplicas = s.ReadyReplicas
	}
	c.syncPods(st.Namespace, st.Name, selectorLabels(st.Spec.Selector, st.Spec.Template.Labels), int(r), int(s.ReadyReplicas))
	if !reflect.DeepEqual(s, st.Status) {
		st.Status = s
		_ = c.tracker.Update(statefulsets, st, st.Namespace, metav1.UpdateOptions{FieldManager: "statefulset-controller"})
	}
}

func selectorLabels(sel *metav1.LabelSelector, fallback map[string]string) map[string]string {
	if sel != nil && len(sel.MatchLabels) > 0 {
		return sel.MatchLabels
	}
	return fallback
}

// syncPods keeps n pods named owner-<i> with labels, the first ready of them Ready.
func (c *Cluster) syncPods(namespace, owner string, labels map[string]string, n, ready int) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-%d", owner, i)
		obj, err := c.tracker.Get(pods, namespace, name)
		if i >= n {
			if err != nil {
				return
			}
			_ = c.tracker.Delete(pods, namespace, name)
			continue
		}
		status := corev1.ConditionFalse
		if i < ready {
			status = corev1.ConditionTrue
		}
		want := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
		if apierrors.IsNotFound(err) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}, Status: want}
			_ = c.tracker.Create(pods, p, namespace)
			continue
		}
		if p, ok := obj.(*corev1.Pod); ok && !reflect.DeepEqual(p.Status, want) {
			p.Status = want
			_ = c.tracker.Update(pods, p, namespace)
		}
	}
}

// Object returns the object's JSON as the cluster holds it, "" when absent.
func (c *Cluster) Object(gvr schema.GroupVersionResource, namespace, name string) map[string]any {
	o, err := c.tracker.Get(gvr, namespace, name)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
