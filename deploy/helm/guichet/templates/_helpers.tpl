{{- define "guichet.labels" -}}
app.kubernetes.io/part-of: guichet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
