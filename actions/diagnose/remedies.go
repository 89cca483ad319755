package diagnose

import (
	"strings"

	"github.com/drbot-dev/drbot/actions"
	"github.com/drbot-dev/drbot/runbook"
)

// The runbooks' troubleshooting sections (../shared/seeds: 001 is LSTM-PFD,
// 000 is inflow), quoted with the service's own names filled in where the
// runbook names its own (bucket, selector, namespace, workload). A remedy
// whose Source is empty is drbot's own advice: the runbooks say nothing
// about that failure.
const (
	srcBackupDownload    = `runbook 001, Appendix A.1 "Backup Download Fails"`
	srcPostgresWontStart = `runbook 001, Appendix A.2 "PostgreSQL Won't Start"`
	srcModelWontLoad     = `runbook 001, Appendix A.3 "Model Won't Load"`
	srcKubernetes        = `runbook 000, "3. Kubernetes Recovery"`
	srcSecretRecovery    = `runbook 000, "4. Secret Recovery"` //nolint:gosec // a runbook section title, not a credential
	srcSinglePod         = `runbook 001, Quick Reference "Single Pod Failure" and 1.3 "Verification Steps"`
)

// backupDownloadFails is A.1: "Check AWS credentials: aws sts
// get-caller-identity; Check bucket permissions: aws s3 ls s3://lstm-pfd-backups/".
func backupDownloadFails(loc runbook.Location) *actions.Remedy {
	if loc.Scheme == runbook.SchemeFile {
		return &actions.Remedy{Steps: []actions.RemedyStep{{Say: "Check that " + loc.Path + " is mounted and readable by drbot"}}}
	}
	steps := []actions.RemedyStep{{Say: "Check AWS credentials", Run: "aws sts get-caller-identity"}}
	if loc.Bucket != "" {
		steps = append(steps, actions.RemedyStep{Say: "Check bucket permissions", Run: "aws s3 ls s3://" + loc.Bucket + "/"})
	}
	return &actions.Remedy{Source: srcBackupDownload, Steps: steps}
}

// awsCredentials is A.1's first step, for the identity check itself.
func awsCredentials() *actions.Remedy {
	return &actions.Remedy{Source: srcBackupDownload, Steps: []actions.RemedyStep{{Say: "Check AWS credentials", Run: "aws sts get-caller-identity"}}}
}

// postgresWontStart is A.2: "Check pod logs: kubectl logs -l app=postgresql
// --tail=100; Check PVC status: kubectl get pvc".
func postgresWontStart(selector, namespace string) *actions.Remedy {
	if selector == "" {
		selector = "app=postgresql" // the runbook's
	}
	ns := nsFlag(namespace)
	return &actions.Remedy{Source: srcPostgresWontStart, Steps: []actions.RemedyStep{
		{Say: "Check pod logs", Run: "kubectl logs -l " + selector + ns + " --tail=100"},
		{Say: "Check PVC status", Run: "kubectl get pvc" + ns},
	}}
}

// pvcStatus is A.2's second step alone, for a claim that is not bound.
func pvcStatus(namespace string) *actions.Remedy {
	return &actions.Remedy{Source: srcPostgresWontStart, Steps: []actions.RemedyStep{{Say: "Check PVC status", Run: "kubectl get pvc" + nsFlag(namespace)}}}
}

// modelWontLoad is A.3: "Check model file exists: kubectl exec -it
// deployment/lstm-pfd-dashboard -- ls -la /app/checkpoints/; Check model
// metrics: curl localhost:8050/metrics | grep model".
func modelWontLoad(svc runbook.Service, metricsURL string) *actions.Remedy {
	workload := "deployment/lstm-pfd-dashboard" // the runbook's
	if svc.Models != nil && len(svc.Models.Restart) > 0 {
		workload = svc.Models.Restart[0].String()
	}
	r := &actions.Remedy{Source: srcModelWontLoad, Steps: []actions.RemedyStep{
		{Say: "Check model file exists", Run: "kubectl exec -it " + workload + nsFlag(svc.Namespace()) + " -- ls -la /app/checkpoints/"},
		{Say: "Check model metrics", Run: "curl " + metricsURL + " | grep model"},
	}}
	if svc.Models != nil {
		r.Command = "/dr restore-models " + svc.Name
	}
	return r
}

// podsFailing is the remedy for a service's pods that are not ready: the
// inflow runbook restores them from git (000 "Kubernetes Recovery"); without
// a git source, LSTM-PFD's quick reference says Kubernetes heals one pod.
func podsFailing(svc runbook.Service) *actions.Remedy {
	ns := svc.Namespace()
	if k := svc.Kubernetes; k != nil && k.Source != nil {
		ref := k.Source.Ref
		if ref == "" {
			ref = "main"
		}
		return &actions.Remedy{Source: srcKubernetes, Steps: []actions.RemedyStep{
			{Say: "Restore from Git (source of truth)", Run: "git checkout " + ref + " && kubectl apply -k " + k.Source.Path},
			{Say: "Verify deployments", Run: "kubectl get pods -n " + ns},
		}, Command: "/dr redeploy " + svc.Name}
	}
	sel := ""
	if svc.Kubernetes != nil {
		sel = svc.Kubernetes.Selector
	}
	return &actions.Remedy{Source: srcSinglePod, Steps: []actions.RemedyStep{
		{Say: "Kubernetes Self-Heal (< 5 min)"},
		{Say: "Check pod status", Run: "kubectl get pods -l " + sel + nsFlag(ns)},
	}}
}

// secretRecovery is 000's "Secret Recovery": "vault operator raft snapshot
// restore /backup/vault-snapshot.snap; Verify: vault kv list secret/prod".
func secretRecovery(svc runbook.Service) *actions.Remedy {
	steps := []actions.RemedyStep{{Say: "Vault DR restore", Run: "vault operator raft snapshot restore <snapshot>"}}
	paths := []string{"secret/prod"}
	if svc.Vault != nil && len(svc.Vault.Verify) > 0 {
		paths = svc.Vault.Verify
	}
	for _, p := range paths {
		steps = append(steps, actions.RemedyStep{Say: "Verify", Run: "vault kv list " + p})
	}
	return &actions.Remedy{Source: srcSecretRecovery, Steps: steps, Command: "/dr restore-vault " + svc.Name}
}

// vaultSealed is drbot's own advice (the runbooks do not cover a sealed
// Vault), pointing at Secret Recovery when the data itself is lost.
func vaultSealed(svc runbook.Service) *actions.Remedy {
	return &actions.Remedy{Steps: []actions.RemedyStep{
		{Say: "Unseal it with a quorum of unseal keys", Run: "vault operator unseal"},
		{Say: "If its data is lost, restore a snapshot (" + srcSecretRecovery + ")", Run: "/dr restore-vault " + svc.Name},
	}}
}

func nsFlag(namespace string) string {
	if namespace == "" || namespace == runbook.DefaultNamespace {
		return ""
	}
	return " -n " + namespace
}

// oneLine collapses whitespace (error texts from servers).
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
