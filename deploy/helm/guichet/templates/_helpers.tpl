{{- define "guichet.labels" -}}
app.kubernetes.io/part-of: guichet
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "guichet.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "guichet.fullname" -}}
{{ printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "guichet.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "guichet.serviceAccountName" -}}
{{ printf "%s-guichet" .Release.Name }}
{{- end -}}

{{/* Environment shared by every process: peers, Temporal, traces. */}}
{{- define "guichet.env" -}}
{{- $root := .root -}}
- name: SERVICE_NAME
  value: {{ .name | quote }}
- name: METRICS_PORT
  value: {{ $root.Values.metrics.port | quote }}
- name: SERVICE_CLIENT_ID
  value: {{ .name | quote }}
- name: GUICHET_SECRETS_DIR
  value: /var/run/secrets/guichet
- name: TEMPORAL_ADDRESS
  value: {{ $root.Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ $root.Values.temporal.namespace | quote }}
- name: TEMPORAL_TASK_QUEUE
  value: {{ $root.Values.temporal.taskQueue | quote }}
{{- range $peer, $c := $root.Values.components }}
{{- if and $c.enabled (eq $c.kind "grpc") }}
- name: {{ printf "%s_ADDR" ($peer | upper) }}
  value: {{ printf "%s-%s:%d" $root.Release.Name $peer (int $c.port) | quote }}
{{- end }}
{{- end }}
{{- if $root.Values.components.gateway.enabled }}
- name: GATEWAY_URL
  value: {{ printf "http://%s-gateway:%d" $root.Release.Name (int $root.Values.components.gateway.port) | quote }}
{{- end }}
{{- if $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
{{- end }}
{{- end -}}

{{/* The credentials as files, named as the settings fields they fill. */}}
{{- define "guichet.secretVolume" -}}
- name: credentials
  secret:
    secretName: {{ .root.Values.credentialsSecret }}
    defaultMode: 0400
    items:
      - key: {{ printf "%s-client-secret" .name }}
        path: service_client_secret
      - key: mail-sealing-key
        path: mail_sealing_key
      {{- if .component.database }}
      - key: {{ printf "%s-database-url" .name }}
        path: database_url
      {{- end }}
      {{- if eq .name "identity" }}
      - key: service-clients
        path: service_clients
      {{- end }}
      {{- if eq .name "web" }}
      - key: web-session-secret
        path: session_secret
      {{- end }}
{{- end -}}
