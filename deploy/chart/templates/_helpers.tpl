{{/* The app's name: catalyst (the chart is named after its Blueprint, bp-catalyst-platform). */}}
{{- define "catalyst.name" -}}
{{- default "catalyst" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object names: the release name when it already says catalyst (`helm install catalyst …`), else <release>-catalyst. */}}
{{- define "catalyst.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "catalyst.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "catalyst.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "catalyst.selectorLabels" -}}
app.kubernetes.io/name: {{ include "catalyst.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "catalyst.labels" -}}
helm.sh/chart: {{ include "catalyst.chart" . }}
{{ include "catalyst.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: control-plane
app.kubernetes.io/part-of: catalyst
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "catalyst.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "catalyst.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "catalyst.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Host names for the Ingress and the HTTPRoute: as given, else console.<sovereignFQDN>, else none. */}}
{{- define "catalyst.hosts" -}}
{{- $hosts := .hosts }}
{{- if and (not $hosts) .fqdn }}
{{- $hosts = list (printf "console.%s" .fqdn) }}
{{- end }}
{{- toJson (default (list) $hosts) }}
{{- end }}

{{/* Where things are mounted in the container. */}}
{{- define "catalyst.paths" -}}
config: /etc/catalyst/config
data: /var/lib/catalyst
catalogRelease: /etc/catalyst/catalog/release
catalogExisting: /etc/catalyst/catalog/existing
trust: /etc/catalyst/trust
fluxWebhook: /etc/catalyst/flux-webhook
flux: /etc/catalyst/flux
sovereignGit: /etc/catalyst/sovereign-git
docker: /etc/catalyst/docker
tmp: /tmp
{{- end }}

{{/*
The config file `catalyst serve --config` reads: keys are serve's long flag names. Built from the
sections of values.yaml, then the plain `config` map (which may not name the keys set here:
values.schema.json refuses them). Credentials are never here: they come from Secrets as
CATALYST_* variables or files.
*/}}
{{- define "catalyst.config" -}}
{{- $p := include "catalyst.paths" . | fromYaml }}
{{- $c := dict "listen" "0.0.0.0:8080" "data-dir" $p.data }}
{{- $_ := set $c "public-url" (.Values.publicUrl | default (printf "http://%s.%s.svc:%v" (include "catalyst.fullname" .) .Release.Namespace .Values.service.port)) }}
{{- $catalogs := list }}
{{- range .Values.catalog.paths }}{{ $catalogs = append $catalogs . }}{{ end }}
{{- if .Values.catalog.blueprints }}{{ $catalogs = append $catalogs $p.catalogRelease }}{{ end }}
{{- if .Values.catalog.existingConfigMap }}{{ $catalogs = append $catalogs $p.catalogExisting }}{{ end }}
{{- if $catalogs }}{{ $_ := set $c "catalog" $catalogs }}{{ end }}
{{- with .Values.nats }}
{{- if and .url (not .existingSecret) }}{{ $_ := set $c "nats-url" .url }}{{ end }}
{{- if .stream }}{{ $_ := set $c "nats-stream" .stream }}{{ end }}
{{- if .subjectPrefix }}{{ $_ := set $c "nats-subject-prefix" .subjectPrefix }}{{ end }}
{{- end }}
{{- with .Values.registry }}
{{- if .url }}{{ $_ := set $c "registry" .url }}{{ end }}
{{- if .username }}{{ $_ := set $c "registry-username" .username }}{{ end }}
{{- if .plainHTTP }}{{ $_ := set $c "registry-plain-http" true }}{{ end }}
{{- if not (kindIs "invalid" .fluxPullSecret) }}{{ $_ := set $c "pull-secret" .fluxPullSecret }}{{ end }}
{{- end }}
{{- $keys := list }}
{{- range $k, $_ := .Values.trust.keys }}{{ $keys = append $keys (printf "%s/%s" $p.trust $k) }}{{ end }}
{{- if $keys }}{{ $_ := set $c "trusted-key" $keys }}{{ end }}
{{- $bundles := list }}
{{- range $k, $_ := .Values.trust.bundles }}{{ $bundles = append $bundles (printf "%s/%s" $p.trust $k) }}{{ end }}
{{- if $bundles }}{{ $_ := set $c "trusted-bundle" $bundles }}{{ end }}
{{- with .Values.powerdns }}
{{- if .url }}{{ $_ := set $c "pdns-url" .url }}{{ end }}
{{- if .serverId }}{{ $_ := set $c "pdns-server-id" .serverId }}{{ end }}
{{- end }}
{{- with .Values.oidc }}
{{- /* issuer, audience and jwks-url: CATALYST_OIDC_* variables (see the StatefulSet). */}}
{{- if .orgClaim }}{{ $_ := set $c "oidc-org-claim" .orgClaim }}{{ end }}
{{- if .roleClaim }}{{ $_ := set $c "oidc-role-claim" .roleClaim }}{{ end }}
{{- if .nameClaim }}{{ $_ := set $c "oidc-name-claim" .nameClaim }}{{ end }}
{{- end }}
{{- if .Values.fluxWebhook.existingSecret }}
{{- $_ := set $c "flux-webhook-key-file" (printf "%s/%s" $p.fluxWebhook .Values.fluxWebhook.key) }}
{{- end }}
{{- if .Values.flux.enabled }}
{{- $_ := set $c "flux-webhook-key-file" (printf "%s/catalyst_flux_webhook_token" $p.flux) }}
{{- $_ := set $c "flux-git-token-file" (printf "%s/catalyst_git_token" $p.flux) }}
{{- end }}
{{- if .Values.sovereignGit.existingSecret }}
{{- $_ := set $c "sovereign-git-key-file" (printf "%s/%s" $p.sovereignGit .Values.sovereignGit.key) }}
{{- end }}
{{- toYaml (merge $c .Values.config) }}
{{- end }}

{{/* Refuse combinations the binary would refuse or that would lose data, at render time. */}}
{{- define "catalyst.validate" -}}
{{- if gt (int .Values.replicaCount) 1 }}
{{- if not .Values.database.existingSecret }}
{{- fail "replicaCount > 1 needs PostgreSQL (database.existingSecret): deployments must be shared between the replicas" }}
{{- end }}
{{- if not (or .Values.nats.url .Values.nats.existingSecret) }}
{{- fail "replicaCount > 1 needs NATS JetStream (nats.url or nats.existingSecret): the event spine must be shared between the replicas" }}
{{- end }}
{{- end }}
{{- if and .Values.registry.existingSecret (not .Values.registry.username) }}
{{- fail "registry.existingSecret (the password) needs registry.username" }}
{{- end }}
{{- if ne (empty .Values.oidc.issuer) (empty .Values.oidc.audience) }}
{{- fail "oidc.issuer and oidc.audience go together (serve refuses one without the other)" }}
{{- end }}
{{- if and .Values.oidc.jwksURL (not .Values.oidc.issuer) }}
{{- fail "oidc.jwksURL needs oidc.issuer and oidc.audience" }}
{{- end }}
{{- if and .Values.flux.enabled (not .Values.flux.existingSecret) }}
{{- fail "flux.enabled needs flux.existingSecret (the bootstrap creates catalyst-flux: username, password, catalyst_git_token, catalyst_flux_webhook_token)" }}
{{- end }}
{{- if and .Values.flux.enabled .Values.fluxWebhook.existingSecret }}
{{- fail "flux.enabled takes the webhook key from flux.existingSecret: leave fluxWebhook.existingSecret empty" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway to attach to)" }}
{{- end }}
{{- end }}
