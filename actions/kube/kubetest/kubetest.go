// Package kubetest is a small simulated cluster for tests: client-go's fake
// clientset plus reactors and a controller loop that do what the API server
// and the deployment/statefulset controllers would (the fake clientset runs
// no controllers):
//
//   - a change of a workload's spec (update or patch) bumps
//     metadata.generation, as the API server does; a status update changes
//     only the status;
//   - a controller goroutine observes the new generation and rolls the
//     workload one replica per tick (updated, then old replicas gone, then
//     available), keeping one pod per replica with the Ready condition.
//
// A workload can be made to fail its rollout (Progressing condition with
// reason ProgressDeadlineExceeded) or to hang (never observed), per name.
package kubetest

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
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Behaviour is how the simulated controller treats a workload.
type Behaviour int

// Behaviours.
const (
	Normal   Behaviour = iota // roll out one replica per tick
	Deadline                  // observe, then report ProgressDeadlineExceeded
	Hang                      // never observe the new generation
)

// Cluster is a fake clientset with simulated controllers.
type Cluster struct {
	*fake.Clientset

	mu        sync.Mutex
	behaviour map[string]Behaviour // key namespace/name
	templates map[string]string    // last pod template seen, per workload
}

// New returns a cluster holding objs, with its controller running every tick
// until t ends.
func New(t testing.TB, tick time.Duration, objs ...runtime.Object) *Cluster {
	t.Helper()
	c := &Cluster{Clientset: fake.NewClientset(objs...), behaviour: map[string]Behaviour{}, templates: map[string]string{}}
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			c.templates[o.Namespace+"/"+o.Name] = templateKey(o.Spec.Template)
		case *appsv1.StatefulSet:
			c.templates[o.Namespace+"/"+o.Name] = templateKey(o.Spec.Template)
		}
	}
	for _, res := range []string{"deployments", "statefulsets"} {
		c.PrependReactor("update", res, c.react)
		c.PrependReactor("patch", res, c.react)
	}
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
				c.Step(ctx)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// Intercept puts fn first in the reactor chain for verb on resource. Unlike the
// fake's own PrependReactor it is safe while the controller runs: it takes the
// lock the fake holds while it invokes reactors.
func (c *Cluster) Intercept(verb, resource string, fn k8stesting.ReactionFunc) {
	c.Lock()
	defer c.Unlock()
	c.PrependReactor(verb, resource, fn)
}

// SetBehaviour sets how the controller treats namespace/name.
func (c *Cluster) SetBehaviour(namespace, name string, b Behaviour) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.behaviour[namespace+"/"+name] = b
}

func (c *Cluster) behaviourOf(namespace, name string) Behaviour {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.behaviour[namespace+"/"+name]
}

// react is the API server's part: spec changes bump the generation, status
// updates change only the status. It runs inside the fake's lock, so the
// read-modify-write is atomic.
func (c *Cluster) react(action k8stesting.Action) (bool, runtime.Object, error) {
	tracker := c.Tracker()
	gvr := action.GetResource()
	ns := action.GetNamespace()
	var name string
	switch a := action.(type) {
	case k8stesting.UpdateActionImpl:
		obj, ok := a.GetObject().(metav1.Object)
		if !ok {
			return false, nil, nil
		}
		name = obj.GetName()
	case k8stesting.PatchActionImpl:
		name = a.GetName()
	default:
		return false, nil, nil
	}
	old, err := tracker.Get(gvr, ns, name)
	if err != nil {
		return true, nil, err
	}
	if action.GetSubresource() == "status" {
		upd, ok := action.(k8stesting.UpdateActionImpl)
		if !ok {
			return false, nil, nil
		}
		merged := old.DeepCopyObject()
		switch m := merged.(type) {
		case *appsv1.Deployment:
			m.Status = upd.GetObject().(*appsv1.Deployment).Status
		case *appsv1.StatefulSet:
			m.Status = upd.GetObject().(*appsv1.StatefulSet).Status
		}
		if err := tracker.Update(gvr, merged, ns); err != nil {
			return true, nil, err
		}
		return true, merged, nil
	}
	handled, obj, err := k8stesting.ObjectReaction(tracker)(action)
	if !handled || err != nil {
		return handled, obj, err
	}
	cur, err := tracker.Get(gvr, ns, name)
	if err != nil {
		return true, nil, err
	}
	switch n := cur.(type) {
	case *appsv1.Deployment:
		o := old.(*appsv1.Deployment)
		n.Status = o.Status
		n.Generation = o.Generation
		if !reflect.DeepEqual(o.Spec, n.Spec) {
			n.Generation++
		}
	case *appsv1.StatefulSet:
		o := old.(*appsv1.StatefulSet)
		n.Status = o.Status
		n.Generation = o.Generation
		if !reflect.DeepEqual(o.Spec, n.Spec) {
			n.Generation++
		}
	}
	if err := tracker.Update(gvr, cur, ns); err != nil {
		return true, nil, err
	}
	return true, cur, nil
}

// Step runs one controller pass over every workload (the goroutine calls it
// each tick; tests may call it directly).
func (c *Cluster) Step(ctx context.Context) {
	ds, err := c.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for i := range ds.Items {
			c.stepDeployment(ctx, &ds.Items[i])
		}
	}
	ss, err := c.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for i := range ss.Items {
			c.stepStatefulSet(ctx, &ss.Items[i])
		}
	}
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func templateKey(tpl corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(tpl)
	return string(b)
}

func (c *Cluster) templateChanged(key string, tpl corev1.PodTemplateSpec) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := templateKey(tpl)
	changed := c.templates[key] != s
	c.templates[key] = s
	return changed
}

func (c *Cluster) stepDeployment(ctx context.Context, d *appsv1.Deployment) {
	b := c.behaviourOf(d.Namespace, d.Name)
	if b == Hang {
		return
	}
	r := replicasOf(d.Spec.Replicas)
	s := d.Status
	if s.ObservedGeneration < d.Generation {
		s.ObservedGeneration = d.Generation
		if c.templateChanged(d.Namespace+"/"+d.Name, d.Spec.Template) {
			s.UpdatedReplicas = 0 // a new ReplicaSet; the old pods stay until replaced
		}
		// A scale-down: the ReplicaSet is scaled at once, its pods terminate later.
		s.UpdatedReplicas = min(s.UpdatedReplicas, r)
		s.AvailableReplicas = min(s.AvailableReplicas, s.UpdatedReplicas)
		if b == Deadline {
			s.Conditions = []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.Name),
			}}
		}
	} else if b != Deadline {
		switch {
		case s.UpdatedReplicas < r:
			s.UpdatedReplicas++
			s.Replicas = r + 1 // surge: an old pod is still there
			s.AvailableReplicas = max(0, s.UpdatedReplicas-1)
		case s.UpdatedReplicas > r:
			s.UpdatedReplicas = r
			s.Replicas = r
			s.AvailableReplicas = min(s.AvailableReplicas, r)
		case s.Replicas != r:
			s.Replicas = r
		case s.AvailableReplicas < s.UpdatedReplicas:
			s.AvailableReplicas++
		case s.AvailableReplicas > s.UpdatedReplicas:
			s.AvailableReplicas = s.UpdatedReplicas
		}
		s.ReadyReplicas = s.AvailableReplicas
		s.UnavailableReplicas = max(0, r-s.AvailableReplicas)
	}
	// Pods first, so that a status saying "done" is never ahead of the pods.
	labels := d.Spec.Template.Labels
	if d.Spec.Selector != nil && len(d.Spec.Selector.MatchLabels) > 0 {
		labels = d.Spec.Selector.MatchLabels
	}
	c.syncPods(ctx, d.Namespace, d.Name, labels, int(s.Replicas), int(s.AvailableReplicas))
	if !reflect.DeepEqual(s, d.Status) {
		d.Status = s
		_, _ = c.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	}
}

func (c *Cluster) stepStatefulSet(ctx context.Context, st *appsv1.StatefulSet) {
	b := c.behaviourOf(st.Namespace, st.Name)
	if b == Hang {
		return
	}
	r := replicasOf(st.Spec.Replicas)
	s := st.Status
	if s.ObservedGeneration < st.Generation || s.ObservedGeneration == 0 {
		s.ObservedGeneration = max(st.Generation, 1)
		if c.templateChanged(st.Namespace+"/"+st.Name, st.Spec.Template) || s.UpdateRevision == "" {
			s.UpdateRevision = fmt.Sprintf("%s-%d", st.Name, s.ObservedGeneration)
			s.UpdatedReplicas = 0
		}
		// A scale-down removes pods at once.
		s.UpdatedReplicas = min(s.UpdatedReplicas, r)
		s.ReadyReplicas = min(s.ReadyReplicas, r)
		s.CurrentReplicas = min(s.CurrentReplicas, r)
		s.Replicas = min(s.Replicas, r)
		s.AvailableReplicas = s.ReadyReplicas
	} else if b != Deadline {
		switch {
		case s.UpdatedReplicas < r:
			s.UpdatedReplicas++
			s.ReadyReplicas = s.UpdatedReplicas
		case s.UpdatedReplicas > r:
			s.UpdatedReplicas = r
		case s.ReadyReplicas != r:
			s.ReadyReplicas = r
		default:
			s.CurrentRevision = s.UpdateRevision
			s.CurrentReplicas = r
		}
		s.Replicas = r
		s.AvailableReplicas = s.ReadyReplicas
	}
	labels := st.Spec.Template.Labels
	if st.Spec.Selector != nil && len(st.Spec.Selector.MatchLabels) > 0 {
		labels = st.Spec.Selector.MatchLabels
	}
	c.syncPods(ctx, st.Namespace, st.Name, labels, int(s.Replicas), int(s.ReadyReplicas))
	if !reflect.DeepEqual(s, st.Status) {
		st.Status = s
		_, _ = c.AppsV1().StatefulSets(st.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{})
	}
}

// syncPods keeps n pods named owner-<i> with labels, the first ready of them Ready.
func (c *Cluster) syncPods(ctx context.Context, namespace, owner string, labels map[string]string, n, ready int) {
	pods := c.CoreV1().Pods(namespace)
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-%d", owner, i)
		existing, err := pods.Get(ctx, name, metav1.GetOptions{})
		if i >= n {
			if err != nil {
				return
			}
			_ = pods.Delete(ctx, name, metav1.DeleteOptions{})
			continue
		}
		status := corev1.ConditionFalse
		if i < ready {
			status = corev1.ConditionTrue
		}
		want := corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
		if apierrors.IsNotFound(err) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}, Status: want}
			_, _ = pods.Create(ctx, p, metav1.CreateOptions{})
			continue
		}
		if err == nil && !reflect.DeepEqual(existing.Status, want) {
			existing.Status = want
			_, _ = pods.UpdateStatus(ctx, existing, metav1.UpdateOptions{})
		}
	}
}

// Deployment returns a deployment named name in namespace with replicas,
// whose pods carry app=name; its status says it is fully rolled out.
func Deployment(namespace, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Generation: 1, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":1"}}},
			},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas,
			ReadyReplicas: replicas, AvailableReplicas: replicas,
		},
	}
}

// StatefulSet returns a statefulset named name in namespace with replicas,
// whose pods carry app=name; its status says it is fully rolled out.
func StatefulSet(namespace, name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	rev := name + "-1"
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Generation: 1, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas:       &replicas,
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":1"}}},
			},
		},
		Status: appsv1.StatefulSetStatus{
			ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
			UpdatedReplicas: replicas, CurrentReplicas: replicas, CurrentRevision: rev, UpdateRevision: rev,
		},
	}
}
