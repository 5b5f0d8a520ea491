# The gatehouse server image: one static binary on an empty base, running as
# uid 65532 with everything it writes under the /var/lib/gatehouse volume.
#
# Two ways to the same image (docs/deploy.md, "The container image"):
#
#   docker build -t gatehouse .
#       builds cmd/gatehouse from this checkout in a golang stage.
#   docker build --target runtime-prebuilt -t gatehouse DIR
#       DIR holds only `gatehouse` (CGO_ENABLED=0 go build ./cmd/gatehouse)
#       and `ca-certificates.crt`; nothing is pulled, so it works offline.
#
# runtime-prebuilt is the first stage on purpose: a builder that processes
# every stage before its target (older buildah) then never reaches the
# golang stage, whose base image it could not pull. The two runtime stages
# end in the same lines; deploy/container's test keeps them so.

ARG GO_VERSION=1.26

FROM scratch AS runtime-prebuilt
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY gatehouse /usr/local/bin/gatehouse
# runtime settings (same in both runtime stages)
USER 65532:65532
WORKDIR /var/lib/gatehouse
ENV GATEHOUSE_DB=/var/lib/gatehouse/gatehouse.db \
    GATEHOUSE_LISTEN=:8080 \
    HOME=/var/lib/gatehouse \
    PATH=/usr/local/bin
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
ARG VERSION=dev
# The module and build caches only speed up rebuilds; the result is the same.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/gatehouse ./cmd/gatehouse \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

FROM scratch AS runtime
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
# runtime settings (same in both runtime stages)
USER 65532:65532
WORKDIR /var/lib/gatehouse
ENV GATEHOUSE_DB=/var/lib/gatehouse/gatehouse.db \
    GATEHOUSE_LISTEN=:8080 \
    HOME=/var/lib/gatehouse \
    PATH=/usr/local/bin
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
