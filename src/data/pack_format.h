/* pack_format.h — the on-disk layout of a deepercluster pack (private to
 * src/data). A pack is a directory:
 *
 *   index.dcpack       header (64 bytes), then one 32-byte entry per image
 *   shard-00000.bin …  the images' bytes, back to back
 *
 * All integers little-endian. Header: magic "DCPACK\r\n", u32 version (1),
 * u32 shards, u64 images, i32 classes (0: unlabelled), u32 h, w, c (the
 * common size, 0 when the images vary), u32 largest side, then zeros.
 * Entry: u64 offset, u32 bytes, u32 shard, u16 h, u16 w, u8 c, u8 format
 * (0: raw 8-bit HWC pixels, 1: a JPEG or PNG file's bytes), u16 zero,
 * i32 label (-1: none), u32 zero. */
#ifndef DC_PACK_FORMAT_H
#define DC_PACK_FORMAT_H

#define DC_PACK_MAGIC "DCPACK\r\n"
#define DC_PACK_VERSION 1u
#define DC_PACK_HEADER 64
#define DC_PACK_ENTRY 32
#define DC_PACK_INDEX "index.dcpack"
#define DC_PACK_RAW 0
#define DC_PACK_FILE 1

#endif
