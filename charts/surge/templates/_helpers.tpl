{{/* The chart's name ("surge" unless nameOverride). */}}
{{- define "surge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name. A release name that already contains the chart's name is used as it is,
so release "surge" gives surge-controller-manager, surge-manager-role, ... as the kustomize install names them.
Object names add up to 26 characters to it (-leader-election-rolebinding): kept to 63 - 26.
*/}}
{{- define "surge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 37 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the operator's pods (also the PDB, the NetworkPolicy and the anti-affinity). */}}
{{- define "surge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "surge.name" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "surge.labels" -}}
{{ include "surge.selectorLabels" . }}
app.kubernetes.io/part-of: surge
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "surge.serviceAccountName" -}}
{{ include "surge.fullname" . }}-controller-manager
{{- end }}

{{/* "true" when more than one replica runs: then only the holder of the Lease acts. */}}
{{- define "surge.leaderElection" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/* The ServiceAccount as an RBAC subject. */}}
{{- define "surge.subject" -}}
- kind: ServiceAccount
  name: {{ include "surge.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
The rules of the operator's ClusterRole (cluster mode) or of its Role in each watched namespace
(namespaced mode). manifests/rbac/role.yaml says who needs each rule and why; the namespaced mode has no CRD
watch (a Role cannot grant it; exact namespace names turn kopf's scanning off).
*/}}
{{- define "surge.managerRules" -}}
- apiGroups: [autoscaling.surge.dev]
  resources: [autoscalepolicies]
  verbs: [list, watch, patch]
- apiGroups: [autoscaling.surge.dev]
  resources: [autoscalepolicies/status]
  verbs: [patch]
- apiGroups: [autoscaling.surge.dev]
  resources: [autoscalepolicycheckpoints]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/resize]
  verbs: [patch]
- apiGroups: [metrics.k8s.io]
  resources: [pods]
  verbs: [list]
- apiGroups: [apps]
  resources: [deployments/scale, statefulsets/scale]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch]
{{- end }}

{{/* Vertical Recreate / InPlaceOrRecreate: patch of the pod template (manifests/components/recreate). */}}
{{- define "surge.recreateRules" -}}
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [patch]
{{- end }}
