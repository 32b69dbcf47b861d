{{/* The name of namespaced objects of the release. */}}
{{- define "govcloud.fullname" -}}
{{- default "govcloud-operator" .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "govcloud.labels" -}}
app.kubernetes.io/name: govcloud-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "govcloud.selectorLabels" -}}
app.kubernetes.io/name: govcloud-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "govcloud.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "govcloud.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The user name the apiserver gives the operator's ServiceAccount. */}}
{{- define "govcloud.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "govcloud.serviceAccountName" . }}
{{- end -}}

{{/* The operator's configuration file: .Values.config with the groups of
     .Values.groups, which the roles and admission policies use too. */}}
{{- define "govcloud.config" -}}
{{- $groups := dict "reviewerGroup" .Values.groups.reviewers "vendorGroup" .Values.groups.vendors "auditorGroup" .Values.groups.auditors -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.metrics.prometheusRule.enabled -}}
{{- /* The series the PrometheusRule records (files/prometheus-rules.yaml),
       unless the configuration names queries of its own. */ -}}
{{- $queries := dict "cpu" "namespace:govcloud_vcpu_utilisation:ratio" "memory" "namespace:govcloud_memory_utilisation:ratio" "diskUsed" "namespace:govcloud_data_disk_used:bytes" "diskCapacity" "namespace:govcloud_data_disk_capacity:bytes" -}}
{{- $config = mustMergeOverwrite (dict "prometheus" (dict "queries" $queries)) $config -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $config $groups) -}}
{{- end -}}

{{/* Read access to what the operator creates for tenancies and the events
     it records: for reviewers, vendors and auditors. */}}
{{- define "govcloud.readOwned" }}
- apiGroups: [""]
  resources: [namespaces, resourcequotas, limitranges, persistentvolumeclaims, events]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [kubevirt.io]
  resources: [virtualmachines, virtualmachineinstances]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch]
{{- end }}
