{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "voicebot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voicebot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-<component>, e.g. voicebot-stt. Argument: dict root, name. */}}
{{- define "voicebot.componentName" -}}
{{- printf "%s-%s" (include "voicebot.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------------ */}}

{{- define "voicebot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "voicebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voicebot
{{- end }}

{{/* Argument: dict root, name. */}}
{{- define "voicebot.componentLabels" -}}
{{ include "voicebot.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Argument: dict root, name. */}}
{{- define "voicebot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voicebot.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Every pod of this release, whatever its component. */}}
{{- define "voicebot.releaseSelector" -}}
app.kubernetes.io/name: {{ include "voicebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Values ------------------------------------------------------------------------------ */}}

{{/*
Deep merge of two maps, the second winning: maps merge key by key, anything else (lists,
scalars, false, 0) replaces. Sprig's merge helpers skip false and 0, which would stop a
component from turning off what the default block turns on. Argument: list base over.
*/}}
{{- define "voicebot.deepMerge" -}}
{{- $out := deepCopy (index . 0) }}
{{- range $key, $value := index . 1 }}
{{- $current := index $out $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $current) }}
{{- $_ := set $out $key (include "voicebot.deepMerge" (list $current $value) | fromYaml) }}
{{- else }}
{{- $_ := set $out $key $value }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Services' default ports (voicebot/catalog.py). */}}
{{- define "voicebot.defaultPorts" -}}
orchestrator: 50051
stt: 50052
tts: 50053
llm: 50054
cache: 50055
analytics: 50056
{{- end }}

{{/*
One component's values: `default` with the component's block merged over it, plus `name`,
`fullname`, `port` and `metricsPort` resolved. Argument: dict root, name. Use with fromYaml.
*/}}
{{- define "voicebot.component" -}}
{{- $root := .root }}
{{- $c := include "voicebot.deepMerge" (list $root.Values.default (index $root.Values.components .name)) | fromYaml }}
{{- $port := int $c.port }}
{{- if eq $port 0 }}{{ $port = int (index (include "voicebot.defaultPorts" . | fromYaml) .name) }}{{ end }}
{{- $metricsPort := int $c.metricsPort }}
{{- if eq $metricsPort 0 }}{{ $metricsPort = add $port 1000 }}{{ end }}
{{- $_ := set $c "name" .name }}
{{- $_ = set $c "fullname" (include "voicebot.componentName" .) }}
{{- $_ = set $c "port" $port }}
{{- $_ = set $c "metricsPort" $metricsPort }}
{{- $_ = set $c "vllmEnabled" (and (hasKey $c "vllm") $c.vllm.enabled) }}
{{- toYaml $c }}
{{- end }}

{{/*
Every enabled component's values (see voicebot.component), in catalog order, as {items: [...]}.
Use: range (include "voicebot.components" $ | fromYaml).items
*/}}
{{- define "voicebot.components" -}}
{{- $items := list }}
{{- range $name := list "orchestrator" "stt" "tts" "llm" "cache" "analytics" }}
{{- $c := include "voicebot.component" (dict "root" $ "name" $name) | fromYaml }}
{{- if $c.enabled }}
{{- $items = append $items $c }}
{{- end }}
{{- end }}
{{- toYaml (dict "items" $items) }}
{{- end }}

{{- define "voicebot.image" -}}
{{- $c := .c }}
{{- $repo := default (printf "%s/%s" .root.Values.image.repository $c.name) $c.image.repository }}
{{- $tag := $c.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repo (toString $tag) }}
{{- end }}

{{/* Lowest replica count the component can run with (HPA floor or replicas). Argument: component. */}}
{{- define "voicebot.minReplicas" -}}
{{- if .autoscaling.enabled }}{{ int .autoscaling.minReplicas }}{{ else }}{{ int .replicas }}{{ end }}
{{- end }}

{{/* A ReadWriteOnce volume pins the component to one replica and Recreate updates. Argument: component. */}}
{{- define "voicebot.singleWriter" -}}
{{- if and .persistence.enabled (eq .persistence.accessMode "ReadWriteOnce") }}true{{ end }}
{{- end }}

{{/* The Redis URL when it is not secret ("" when it comes from a Secret or there is none). */}}
{{- define "voicebot.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s-redis:%d/0" (include "voicebot.fullname" .) (int .Values.redis.port) }}
{{- else if and .Values.redis.external.url (not .Values.redis.external.existingSecret) }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{- define "voicebot.authSecretName" -}}
{{- default (printf "%s-auth" (include "voicebot.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "voicebot.authEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.authToken }}true{{ end }}
{{- end }}

{{- define "voicebot.adminTokenEnabled" -}}
{{- if or .Values.auth.adminToken (and .Values.auth.existingSecret .Values.auth.adminTokenKey) }}true{{ end }}
{{- end }}

{{- define "voicebot.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "voicebot.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* Probes ------------------------------------------------------------------------------ */}}

{{/*
The health check of one container. Kubernetes' native gRPC probe speaks plaintext only, so with
TLS the kubelet runs the same grpc.health.v1 Check over TLS from inside the container, with the
mounted CA (and the pod's own certificate as client certificate under mutual TLS).
Argument: dict root, c.
*/}}
{{- define "voicebot.healthCheck" -}}
{{- if .root.Values.tls.enabled }}
exec:
  command:
    - python
    - -c
    - >-
      import sys, grpc;
      from grpc_health.v1 import health_pb2, health_pb2_grpc;
      read = lambda name: open("/var/run/secrets/voicebot/tls/" + name, "rb").read();
      mtls = {{ ternary "True" "False" .root.Values.tls.clientAuth }};
      creds = grpc.ssl_channel_credentials(read("ca.crt"), read("tls.key") if mtls else None, read("tls.crt") if mtls else None);
      channel = grpc.secure_channel("127.0.0.1:{{ .c.port }}", creds, options=[("grpc.ssl_target_name_override", "{{ .c.fullname }}")]);
      reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2);
      sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
{{- else }}
grpc:
  port: {{ .c.port }}
{{- end }}
{{- end }}

{{/* startup, readiness and liveness probes of a service container. Argument: dict root, c, startup. */}}
{{- define "voicebot.probes" -}}
{{- $check := include "voicebot.healthCheck" . | trim -}}
startupProbe:
  {{- $check | nindent 2 }}
  {{- toYaml (.startup | default .c.probes.startup) | nindent 2 }}
readinessProbe:
  {{- $check | nindent 2 }}
  {{- toYaml .c.probes.readiness | nindent 2 }}
{{- /* A draining pod says NOT_SERVING for up to preStop + grace: liveness must not restart it then. */}}
{{- $liveness := deepCopy .c.probes.liveness }}
{{- $drainChecks := add (div (add (int .c.preStopSeconds) (int .c.graceSeconds)) (int $liveness.periodSeconds)) 1 }}
{{- $_ := set $liveness "failureThreshold" (max (int $liveness.failureThreshold) $drainChecks) }}
livenessProbe:
  {{- $check | nindent 2 }}
  {{- toYaml $liveness | nindent 2 }}
{{- end }}
