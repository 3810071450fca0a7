#!/usr/bin/env bash
# Make a node image present in the Docker engine, through a directory the pipeline caches.
#
#   usage: node-image.sh IMAGE CACHE_DIR
#
# 1. IMAGE is already in the engine: nothing to do.
# 2. CACHE_DIR holds IMAGE's archive (restored by the pipeline's cache): `docker load` it.
# 3. Otherwise obtain it, then `docker save` it into CACHE_DIR for the next run (older archives
#    there are removed, so the cache holds one image). kindest/node images are pulled, which
#    needs a registry; any other reference is built offline with pytest-kindcluster's builder,
#    which needs Go, debootstrap, a C compiler and libseccomp-dev (see the README).
#
# The archive is named after the image reference, so a new reference never loads an old image.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 IMAGE CACHE_DIR" >&2
    exit 2
fi
image=$1
cache_dir=$2
archive="$cache_dir/$(printf '%s' "$image" | tr '/:@' '___').tar"
python=${PYTHON:-python}

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "node image $image: already in the engine"
    exit 0
fi

if [ -s "$archive" ]; then
    echo "node image $image: loading $archive"
    docker load --input "$archive"
    if docker image inspect "$image" >/dev/null 2>&1; then
        exit 0
    fi
    echo "node image $image: $archive did not hold it; obtaining it again" >&2
fi

case "$image" in
    kindest/node:* | docker.io/kindest/node:*)
        echo "node image $image: pulling"
        docker pull "$image"
        ;;
    *)
        echo "node image $image: building (compiled components are cached in ~/.cache/pytest-kindcluster)"
        "$python" -m pytest_kindcluster node-image build --tag "$image"
        ;;
esac

mkdir -p "$cache_dir"
find "$cache_dir" -maxdepth 1 -name '*.tar' ! -path "$archive" -delete
echo "node image $image: saving $archive"
docker save --output "$archive.partial" "$image"
mv "$archive.partial" "$archive"
