// Package hub downloads models from the Hugging Face Hub into the Hugging
// Face cache, the directory layout huggingface_hub, transformers and mlx-lm
// share, so a model downloaded by any of them is used by the others:
//
//	$HF_HUB_CACHE/models--ORG--NAME/
//	    blobs/<etag>                  file contents (etag: sha256 for LFS files, git blob id otherwise)
//	    blobs/<etag>.incomplete       a download in progress, resumed with an HTTP Range request
//	    snapshots/<commit>/<file>     -> ../../blobs/<etag>
//	    refs/<revision>               the commit a branch or tag pointed to
//	$HF_HUB_CACHE/.locks/models--ORG--NAME/<etag>.lock
//
// A Client speaks the protocol huggingface_hub speaks: the commit and file
// list from GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true, each
// file's metadata from a HEAD of {endpoint}/{repo}/resolve/{commit}/{file}
// (X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size, a redirect to the
// storage host), then the bytes with Range requests. Every file is checked
// against its sha256 (LFS) or git blob id while it streams to disk.
//
// The environment is read as huggingface_hub reads it: HF_ENDPOINT,
// HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HF_TOKEN (or the token file
// `huggingface-cli login` writes), HF_HUB_OFFLINE.
package hub
