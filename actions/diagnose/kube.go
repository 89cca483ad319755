package diagnose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/drbot-dev/drbot/actions"
)

// maxLogLine bounds one log line shown; maxPodLines the pods described one by one.
const (
	maxLogLine  = 300
	maxPodLines = 10
)

// Pods looks at the pods of selector in namespace (kubectl get pods -l):
// one summary line, then a failing line per pod that is not ready with its
// phase, restarts, the reason its container is waiting, its last
// termination, the claims it mounts (each read: kubectl get pvc NAME) and
// the last LogTail log lines (kubectl logs --tail, --previous for a
// container that crashed) of the first few. remedy is attached to failing
// lines. Kubernetes calls: list pods, get pods/log, get persistentvolumeclaims.
func Pods(ctx context.Context, cs kubernetes.Interface, namespace, selector string, remedy *actions.Remedy) []actions.Finding {
	name := "pods " + selector
	if namespace != "" {
		name += " in " + namespace
	}
	summary := actions.Finding{Area: "pods", Name: name}
	if _, err := labels.Parse(selector); err != nil {
		summary.Status, summary.Detail = actions.StatusFail, "not a label selector: "+err.Error()
		return []actions.Finding{summary}
	}
	list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		summary.Status, summary.Detail, summary.Remedy = actions.StatusFail, "cannot list pods: "+kubeError(err), remedy
		return []actions.Finding{summary}
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var failing []corev1.Pod
	total, restarts := 0, int32(0)
	lastReason := ""
	finished := map[string]int{} // pods that ended (Failed: Evicted, OOMKilled …) by reason
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if p.Status.Phase == corev1.PodFailed {
			// A pod that ended stays listed until deleted; its workload
			// has replaced it, so it counts apart, as verify does.
			finished[orDash(p.Status.Reason)]++
			continue
		}
		total++
		for _, c := range p.Status.ContainerStatuses {
			restarts += c.RestartCount
			if t := c.LastTerminationState.Terminated; t != nil && t.Reason != "" {
				lastReason = t.Reason
			}
		}
		if !podReady(p) {
			failing = append(failing, p)
		}
	}
	switch {
	case total == 0:
		summary.Status, summary.Detail, summary.Remedy = actions.StatusFail, "no pods match", remedy
	case len(failing) > 0:
		summary.Status, summary.Detail, summary.Remedy = actions.StatusFail, fmt.Sprintf("%d/%d ready", total-len(failing), total), remedy
	default:
		summary.Status, summary.Detail = actions.StatusOK, fmt.Sprintf("%d/%d ready", total, total)
	}
	if restarts > 0 {
		summary.Detail += fmt.Sprintf(", %d restarts", restarts)
		if lastReason != "" {
			summary.Detail += " (last terminated: " + lastReason + ")"
		}
	}
	if len(finished) > 0 {
		var parts []string
		for reason, n := range finished {
			parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		}
		sort.Strings(parts)
		summary.Detail += "; ended pods still listed: " + strings.Join(parts, ", ")
	}
	out := []actions.Finding{summary}
	if len(failing) > maxPodLines {
		out[0].Detail += fmt.Sprintf("; the first %d of %d pods not ready below", maxPodLines, len(failing))
		failing = failing[:maxPodLines]
	}
	details := make([]actions.Finding, len(failing))
	var wg sync.WaitGroup
	for i, p := range failing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			details[i] = podFinding(ctx, cs, p, i < maxLogPods, remedy)
		}()
	}
	wg.Wait()
	return append(out, details...)
}

func podReady(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podFinding describes one pod that is not ready.
func podFinding(ctx context.Context, cs kubernetes.Interface, p corev1.Pod, withLogs bool, remedy *actions.Remedy) actions.Finding {
	f := actions.Finding{Area: "pods", Name: "pod " + p.Name, Status: actions.StatusFail, Remedy: remedy}
	parts := []string{"phase " + string(p.Status.Phase)}
	if p.Status.Reason != "" {
		parts = append(parts, p.Status.Reason)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			parts = append(parts, "not scheduled: "+oneLine(c.Message))
		}
	}
	// The container to read logs of: the first one that is not ready.
	logContainer, previous := "", false
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready {
			continue
		}
		s := "container " + c.Name
		if w := c.State.Waiting; w != nil && w.Reason != "" {
			s += " " + w.Reason
		}
		if c.RestartCount > 0 {
			s += fmt.Sprintf(", %d restarts", c.RestartCount)
		}
		if t := c.LastTerminationState.Terminated; t != nil {
			s += fmt.Sprintf(", last terminated: %s (exit %d)", orDash(t.Reason), t.ExitCode)
		} else if t := c.State.Terminated; t != nil {
			s += fmt.Sprintf(", terminated: %s (exit %d)", orDash(t.Reason), t.ExitCode)
		}
		parts = append(parts, s)
		if logContainer == "" {
			logContainer = c.Name
			// A crashed container waiting to restart has no current logs:
			// read the last run's, as kubectl logs --previous does.
			previous = c.State.Running == nil && c.RestartCount > 0 && c.LastTerminationState.Terminated != nil
		}
	}
	parts = append(parts, claims(ctx, cs, p)...)
	f.Detail = strings.Join(parts, "; ")
	if withLogs && logContainer != "" {
		lines, err := tailLogs(ctx, cs, p.Namespace, p.Name, logContainer, previous)
		if err != nil {
			f.Detail += "; logs unavailable: " + kubeError(err)
		} else {
			f.Logs = lines
		}
	}
	return f
}

// claims reads the PVCs pod mounts (kubectl get pvc NAME): a claim that is
// missing or not bound keeps a pod Pending.
func claims(ctx context.Context, cs kubernetes.Interface, p corev1.Pod) []string {
	var out []string
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		pvc, err := cs.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, "claim "+name+" does not exist")
		case err != nil:
			out = append(out, "claim "+name+": "+kubeError(err))
		case pvc.Status.Phase != corev1.ClaimBound:
			out = append(out, "claim "+name+" "+string(pvc.Status.Phase))
		}
	}
	return out
}

// tailLogs returns the last LogTail lines of a container's log.
func tailLogs(ctx context.Context, cs kubernetes.Interface, namespace, pod, container string, previous bool) ([]string, error) {
	tail := int64(LogTail)
	limit := int64(LogTail * maxLogLine * 2)
	rc, err := cs.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container: container, TailLines: &tail, Previous: previous, LimitBytes: &limit,
	}).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(rc, limit))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.ToValidUTF8(sc.Text(), "?")
		if len(line) > maxLogLine {
			line = line[:maxLogLine] + "…"
		}
		lines = append(lines, line)
		if len(lines) > LogTail {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil && len(lines) == 0 {
		return nil, err
	}
	return lines, nil
}

// PVCs looks at the namespace's persistent volume claims (kubectl get pvc):
// one line when all are bound, a failing line per claim that is not.
// Kubernetes calls: list persistentvolumeclaims.
func PVCs(ctx context.Context, cs kubernetes.Interface, namespace string) []actions.Finding {
	f := actions.Finding{Area: "pvc", Name: "PVCs in " + namespace}
	list, err := cs.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		f.Status, f.Detail, f.Remedy = actions.StatusFail, "cannot list PVCs: "+kubeError(err), pvcStatus(namespace)
		return []actions.Finding{f}
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var bad []actions.Finding
	for _, c := range items {
		if c.Status.Phase == corev1.ClaimBound {
			continue
		}
		phase := string(c.Status.Phase)
		if phase == "" {
			phase = "not bound"
		}
		detail := phase
		if sc := c.Spec.StorageClassName; sc != nil && *sc != "" {
			detail += ", storage class " + *sc
		}
		bad = append(bad, actions.Finding{Area: "pvc", Name: "PVC " + c.Name, Status: actions.StatusFail, Detail: detail, Remedy: pvcStatus(namespace)})
	}
	f.Status = actions.StatusOK
	switch {
	case len(items) == 0:
		f.Detail = "none"
	case len(bad) == 0:
		f.Detail = fmt.Sprintf("%d, all Bound", len(items))
	default:
		f.Status = actions.StatusFail
		f.Detail = fmt.Sprintf("%d of %d Bound", len(items)-len(bad), len(items))
		f.Remedy = pvcStatus(namespace)
	}
	return append([]actions.Finding{f}, bad...)
}

// kubeError is the API server's reason, without the request URL.
func kubeError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		if st.Message != "" {
			return oneLine(st.Message)
		}
		return string(st.Reason)
	}
	return oneLine(err.Error())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
