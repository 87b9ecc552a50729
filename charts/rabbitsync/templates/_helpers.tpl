{{/* Labels every object of the release carries. */}}
{{- define "rabbitsync.labels" -}}
app.kubernetes.io/name: rabbitsync-operator
app.kubernetes.io/part-of: rabbitsync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Names come from the release, so `helm install rabbitsync` gives the names of manifests/ (rabbitsync-operator,
rabbitsync-editor, ...) and another release name never collides with them (the chart's test installs one). */}}
{{- define "rabbitsync.operator" -}}
{{ .Release.Name }}-operator
{{- end }}

{{/* The operator's ServiceAccount as the API server names it (the Secret policy matches on it). */}}
{{- define "rabbitsync.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "rabbitsync.operator" . }}
{{- end }}

{{- define "rabbitsync.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "rabbitsync.brokerSecret" -}}
{{ .Values.clusterSyncBroker.existingSecret | default "rabbitsync-broker-admin" }}
{{- end }}
