"""The Go templates of the Helm chart, one per manifest of :mod:`modelport.deploy.kubernetes`.

Kept as text beside the Python that mirrors them; with the chart's default values each renders
the same object as its twin there (tests/e2e/test_export_kube.py renders them with Helm's own
engine and compares). They use the standard helpers of ``helm create`` only.
"""

from __future__ import annotations

HELPERS = """\
{{/* Standard helpers, as `helm create` writes them. */}}
{{- define "modelport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelport.fullname" -}}
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

{{- define "modelport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelport.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelport.labels" -}}
helm.sh/chart: {{ include "modelport.chart" . }}
{{ include "modelport.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
"""

_METADATA = """\
metadata:
  name: {{ include "modelport.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "modelport.labels" . | nindent 4 }}
"""

CONFIGMAP = (
    """\
apiVersion: v1
kind: ConfigMap
"""
    + _METADATA
    + """\
data:
  MODELPORT_HOME: {{ .Values.homePath | quote }}
  MODELPORT_HOST: "0.0.0.0"
  MODELPORT_PORT: {{ .Values.service.port | quote }}
  {{- with .Values.service.grpcPort }}
  MODELPORT_GRPC_PORT: {{ . | quote }}
  {{- end }}
  MODELPORT_WORKERS: {{ .Values.workers | quote }}
  MODELPORT_DRAIN_TIMEOUT_S: {{ .Values.drainTimeoutSeconds | quote }}
  {{- range $key, $value := .Values.config }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
"""
)

_PROBE = """\
            httpGet:
              path: {path}
              port: http
            periodSeconds: {period}
            timeoutSeconds: 2
            failureThreshold: {failures}
"""

DEPLOYMENT = (
    """\
apiVersion: apps/v1
kind: Deployment
"""
    + _METADATA
    + """\
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "modelport.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      annotations:
        {{- /* a changed ConfigMap rolls the pods: they read it once, at start */}}
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
      labels:
        {{- include "modelport.selectorLabels" . | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      {{- /* SIGTERM follows the preStop pause; the server then drains for its timeout */}}
      terminationGracePeriodSeconds: {{ add (ceil .Values.drainTimeoutSeconds) \
.Values.preStopSleepSeconds .Values.drainMarginSeconds }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: modelport
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: ["modelport"]
          args:
            - serve
            {{- range .Values.models }}
            - {{ . | quote }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.service.port }}
              protocol: TCP
            {{- with .Values.service.grpcPort }}
            - name: grpc
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "modelport.fullname" . }}
          env:
            {{- range .Values.secretEnv }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ $.Values.existingSecret }}
                  key: {{ .key }}
                  {{- if .optional }}
                  optional: true
                  {{- end }}
            {{- end }}
          startupProbe:
"""
    + _PROBE.format(
        path="/readyz", period=5, failures="{{ max 1 (div (add .Values.startupSeconds 4) 5) }}"
    )
    + "          readinessProbe:\n"
    + _PROBE.format(path="/readyz", period=5, failures=2)
    + "          livenessProbe:\n"
    + _PROBE.format(path="/healthz", period=10, failures=3)
    + """\
          lifecycle:
            preStop:
              sleep:
                seconds: {{ .Values.preStopSleepSeconds }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: home
              mountPath: {{ .Values.homePath }}
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: home
          emptyDir: {}
        - name: tmp
          emptyDir: {}
"""
)

SERVICE = (
    """\
apiVersion: v1
kind: Service
"""
    + _METADATA
    + """\
spec:
  type: ClusterIP
  selector:
    {{- include "modelport.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
    {{- with .Values.service.grpcPort }}
    - name: grpc
      port: {{ . }}
      targetPort: grpc
      protocol: TCP
    {{- end }}
"""
)

HPA = (
    """\
{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
"""
    + _METADATA
    + """\
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "modelport.fullname" . }}
  minReplicas: {{ .Values.replicaCount }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
    {{- with .Values.autoscaling.requestsPerSecond }}
    {{- /* a Pods metric served by prometheus-adapter (docs/shipping-kubernetes.md) */}}
    - type: Pods
      pods:
        metric:
          name: {{ $.Values.autoscaling.requestRateMetric }}
        target:
          type: AverageValue
          averageValue: {{ . | quote }}
    {{- end }}
{{- end }}
"""
)

PDB = (
    """\
{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
"""
    + _METADATA
    + """\
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "modelport.selectorLabels" . | nindent 6 }}
{{- end }}
"""
)

SERVICE_MONITOR = (
    """\
{{- if .Values.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
"""
    + _METADATA
    + """\
spec:
  selector:
    matchLabels:
      {{- include "modelport.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
      authorization:
        type: Bearer
        credentials:
          name: {{ .Values.existingSecret }}
          key: {{ .Values.serviceMonitor.apiKeySecretKey }}
{{- end }}
"""
)

NOTES = """\
modelport serves {{ join ", " .Values.models }} as {{ include "modelport.fullname" . }}
in namespace {{ .Release.Namespace }}.

The pods start only once the Secret {{ .Values.existingSecret }} exists, with at least the
keys database-url and auth-secret{{ if .Values.serviceMonitor.enabled }} (and \
{{ .Values.serviceMonitor.apiKeySecretKey }} for Prometheus){{ end }}:

  kubectl -n {{ .Release.Namespace }} create secret generic {{ .Values.existingSecret }} \\
    --from-literal=database-url='postgresql+psycopg://USER:PASSWORD@HOST:5432/modelport' \\
    --from-literal=auth-secret="$(openssl rand -hex 32)"

Try it:

  kubectl -n {{ .Release.Namespace }} port-forward svc/{{ include "modelport.fullname" . }} \
{{ .Values.service.port }}
  curl http://127.0.0.1:{{ .Values.service.port }}/readyz
"""

TEMPLATES = {
    "templates/_helpers.tpl": HELPERS,
    "templates/configmap.yaml": CONFIGMAP,
    "templates/deployment.yaml": DEPLOYMENT,
    "templates/service.yaml": SERVICE,
    "templates/hpa.yaml": HPA,
    "templates/pdb.yaml": PDB,
    "templates/servicemonitor.yaml": SERVICE_MONITOR,
    "templates/NOTES.txt": NOTES,
}
