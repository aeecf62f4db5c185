# jobctl as a small container image: a static binary on a distroless-style
# base, run as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/jobctl/jobctl/cmd.version=${VERSION}" -o /out/jobctl .

# No curl or wget in the runtime image: health checks run `jobctl probe`
# (see the serve service in docker-compose.yml).
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /work --create-home jobctl
COPY --from=build /out/jobctl /usr/local/bin/jobctl
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["jobctl"]
CMD ["--help"]
