{{/* The chart's name, cut to the 63 characters a label value may hold. */}}
{{- define "gatehouse.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RELEASE-gatehouse, or the release name alone when it already says gatehouse. */}}
{{- define "gatehouse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* SQLite on the data volume, unless the DSN comes from a Secret. */}}
{{- define "gatehouse.sqlite" -}}
{{- if not .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The credential names the server reads with a _FILE twin: none of them may sit in config. */}}
{{- define "gatehouse.secretNames" -}}
GATEHOUSE_MENDER_TOKEN GATEHOUSE_MENDER_PASSWORD GATEHOUSE_DPS_CONNECTION_STRING GATEHOUSE_IOTHUB_CONNECTION_STRINGS GATEHOUSE_VAULT_TOKEN GATEHOUSE_VAULT_APPROLE_SECRET_ID GATEHOUSE_WEBHOOK_SECRET GATEHOUSE_OIDC_CLIENT_SECRET
{{- end -}}

{{/* Refuse values that would start a broken or unsafe server. */}}
{{- define "gatehouse.validate" -}}
{{- if and (include "gatehouse.sqlite" .) (gt (int .Values.replicaCount) 1) -}}
{{- fail "SQLite allows one server: set replicaCount 1, or database.existingSecret with a PostgreSQL DSN" -}}
{{- end -}}
{{- if and (include "gatehouse.sqlite" .) (ne .Values.strategy.type "Recreate") .Values.persistence.enabled -}}
{{- fail "SQLite on a volume needs strategy.type Recreate: two servers must never open the file at once" -}}
{{- end -}}
{{- $secret := splitList " " (include "gatehouse.secretNames" .) -}}
{{- range $k, $_ := .Values.config -}}
{{- if or (has $k $secret) (has (trimSuffix "_FILE" $k) $secret) -}}
{{- fail (printf "config.%s is a credential: give it under credentials, from a Secret" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := .Values.credentials -}}
{{- if not (has $k $secret) -}}
{{- fail (printf "credentials.%s: the server reads no such secret (it reads %s)" $k (join ", " $secret)) -}}
{{- end -}}
{{- if or (not $v.secretName) (not $v.key) -}}
{{- fail (printf "credentials.%s needs secretName and key" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The environment both containers share: the database, settings and credential files. */}}
{{- define "gatehouse.env" -}}
- name: GATEHOUSE_DB
{{- if include "gatehouse.sqlite" . }}
  value: {{ .Values.database.path | quote }}
{{- else }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
{{- end }}
{{- if .Values.config }}
- name: GATEHOUSE_CONFIG
  value: /etc/gatehouse/config/gatehouse.env
{{- end }}
{{- range $name, $_ := .Values.credentials }}
- name: {{ $name }}_FILE
  value: /etc/gatehouse/credentials/{{ $name }}
{{- end }}
- name: GATEHOUSE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: GATEHOUSE_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Mounts both containers share. */}}
{{- define "gatehouse.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "gatehouse.sqlite" . }}
- name: data
  mountPath: /var/lib/gatehouse
{{- end }}
{{- if .Values.config }}
- name: config
  mountPath: /etc/gatehouse/config
  readOnly: true
{{- end }}
{{- if .Values.credentials }}
- name: credentials
  mountPath: /etc/gatehouse/credentials
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "gatehouse.probeScheme" -}}
{{- if .Values.serverTLS.secretName -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
