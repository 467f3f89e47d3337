// The layer and archive compressions barge reads. Listed one by one instead of
// archive_read_support_filter_all() so the statically linked libarchive pulls in only these
// codecs (and barge's startup does not pay for loading the rest).
#pragma once

#include <archive.h>

namespace barge::image {

inline void support_compressions(archive* a) {
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_bzip2(a);
}

}  // namespace barge::image
