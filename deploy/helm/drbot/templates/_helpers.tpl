{{/* Labels on every object. No chart version here: the kustomize base renders the same objects. */}}
{{- define "drbot.labels" -}}
app.kubernetes.io/name: drbot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drbot.selectorLabels" -}}
app.kubernetes.io/name: drbot
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drbot.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "drbot.serviceAccountName" -}}
{{ .Values.serviceAccount.name | default .Release.Name }}
{{- end }}

{{- define "drbot.runbookConfigMap" -}}
{{ .Values.runbook.existingConfigMap | default (printf "%s-runbook" .Release.Name) }}
{{- end }}

{{/* Fails the render on a mode drbot does not have. */}}
{{- define "drbot.checkModes" -}}
{{- if not (has .Values.slack.mode (list "http" "socket")) -}}
{{- fail (printf "slack.mode %q: want http or socket" .Values.slack.mode) -}}
{{- end -}}
{{- if not (has .Values.pagerduty.mode (list "webhook" "poll" "both")) -}}
{{- fail (printf "pagerduty.mode %q: want webhook, poll or both" .Values.pagerduty.mode) -}}
{{- end -}}
{{- end }}

{{/* Does drbot take inbound traffic other than probes and metrics? */}}
{{- define "drbot.inbound" -}}
{{- if or (eq .Values.slack.mode "http") (ne .Values.pagerduty.mode "poll") }}true{{ end -}}
{{- end }}
