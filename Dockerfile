# convpipe's image, for those who build with Docker. It is the image that
# `make image` builds without a daemon (cmd/convpipe-image): scratch, the
# static binary, the CA bundle, the non-root user 65532, the same labels;
# cmd/convpipe-image's TestDockerfile keeps the two in step.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t convpipe .

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/convpipe ./cmd/convpipe \
 && mkdir -p /out/var/lib/convpipe /out/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/convpipe:/sbin/nologin\n' > /out/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/group

FROM scratch
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="convpipe" \
      org.opencontainers.image.description="Turns order exports (CSV, Parquet; local or S3) into impact.com conversions" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="proprietary"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chmod=1777 /out/tmp /tmp
COPY --from=build --chown=65532:65532 --chmod=0700 /out/var/lib/convpipe /var/lib/convpipe
COPY --from=build /out/convpipe /convpipe
ENV PATH=/
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /var/lib/convpipe
ENTRYPOINT ["/convpipe"]
CMD ["--help"]
