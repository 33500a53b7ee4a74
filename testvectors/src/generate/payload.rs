//! The payload: salt and commitment, chunks, truncation and the chunk counter.

use super::*;

impl Gen {
    /// Payload truncation, extension and chunk manipulation.
    pub(super) fn payload(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let pf = Expect::PayloadFailure;
        // A four-chunk file: three full chunks and a final one of 500 bytes.
        let mut rng = seeded("payload four chunks");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 3 * CHUNK + 500);
        let s = p.sealed();
        let head = |chunks: &[Vec<u8>]| {
            let mut v = s.header.clone();
            v.extend_from_slice(&s.prefix);
            for c in chunks {
                v.extend_from_slice(c);
            }
            v
        };
        let c = &s.chunks;
        let full = s.file();
        let hl = s.header.len();
        let cases: Vec<(&str, &str, Vec<u8>, usize)> = vec![
            (
                "payload_header_only",
                "the header and nothing else",
                s.header.clone(),
                0,
            ),
            (
                "payload_truncated_in_salt",
                "input ends inside the salt",
                full[..hl + 10].to_vec(),
                0,
            ),
            (
                "payload_truncated_in_commitment",
                "input ends inside the commitment",
                full[..hl + 40].to_vec(),
                0,
            ),
            (
                "payload_no_chunks",
                "salt and commitment, then end of input: the final chunk is missing",
                full[..hl + 56].to_vec(),
                0,
            ),
            (
                "payload_truncated_in_chunk_0",
                "input ends inside chunk 0",
                full[..hl + 56 + 1000].to_vec(),
                0,
            ),
            (
                "payload_truncated_after_chunk_0",
                "input ends right after full chunk 0",
                head(&c[..1]),
                1,
            ),
            (
                "payload_truncated_in_chunk_2",
                "input ends inside chunk 2",
                full[..hl + 56 + 2 * CT_CHUNK + 7].to_vec(),
                2,
            ),
            (
                "payload_truncated_final_chunk_15_bytes",
                "the final chunk cut to 15 bytes, shorter than a tag",
                full[..hl + 56 + 3 * CT_CHUNK + 15].to_vec(),
                3,
            ),
            (
                "payload_truncated_final_chunk_16_bytes",
                "the final chunk cut to 16 bytes: opened as an empty chunk, fails",
                full[..hl + 56 + 3 * CT_CHUNK + 16].to_vec(),
                3,
            ),
            (
                "payload_final_chunk_missing_tag_byte",
                "the final chunk's last tag byte missing",
                full[..full.len() - 1].to_vec(),
                3,
            ),
            (
                "payload_final_chunk_missing",
                "the final chunk removed: input ends after full chunk 2",
                head(&c[..3]),
                3,
            ),
            (
                "payload_trailing_1_byte",
                "one byte after the final chunk",
                [full.clone(), vec![0]].concat(),
                3,
            ),
            (
                "payload_trailing_15_bytes",
                "15 bytes after the final chunk",
                [full.clone(), vec![0x33; 15]].concat(),
                3,
            ),
            (
                "payload_trailing_16_bytes",
                "16 bytes (a tag's length) after the final chunk",
                [full.clone(), vec![0x33; 16]].concat(),
                3,
            ),
            (
                "payload_trailing_17_bytes",
                "17 bytes after the final chunk",
                [full.clone(), vec![0x33; 17]].concat(),
                3,
            ),
            (
                "payload_trailing_chunk",
                "a copy of the final chunk appended",
                [full.clone(), c[3].clone()].concat(),
                3,
            ),
            (
                "payload_trailing_16400_bytes",
                "16400 bytes after the final chunk",
                [full.clone(), vec![0x44; CT_CHUNK]].concat(),
                3,
            ),
            (
                "payload_trailing_header",
                "the file's own header appended (two files concatenated)",
                [full.clone(), s.header.clone()].concat(),
                3,
            ),
            (
                "chunks_swapped_0_1",
                "chunks 0 and 1 swapped",
                head(&[c[1].clone(), c[0].clone(), c[2].clone(), c[3].clone()]),
                0,
            ),
            (
                "chunks_swapped_1_2",
                "chunks 1 and 2 swapped",
                head(&[c[0].clone(), c[2].clone(), c[1].clone(), c[3].clone()]),
                1,
            ),
            (
                "chunks_duplicated_1",
                "chunk 1 twice",
                head(&[
                    c[0].clone(),
                    c[1].clone(),
                    c[1].clone(),
                    c[2].clone(),
                    c[3].clone(),
                ]),
                2,
            ),
            (
                "chunks_deleted_0",
                "chunk 0 removed",
                head(&[c[1].clone(), c[2].clone(), c[3].clone()]),
                0,
            ),
            (
                "chunks_deleted_1",
                "chunk 1 removed",
                head(&[c[0].clone(), c[2].clone(), c[3].clone()]),
                1,
            ),
            (
                "chunks_deleted_2",
                "chunk 2 removed (the final chunk now follows chunk 1)",
                head(&[c[0].clone(), c[1].clone(), c[3].clone()]),
                2,
            ),
            (
                "chunks_final_moved_first",
                "the final chunk moved before chunk 0",
                head(&[c[3].clone(), c[0].clone(), c[1].clone(), c[2].clone()]),
                0,
            ),
            (
                "chunk_1_flipped",
                "one bit of chunk 1's ciphertext",
                flip(full.clone(), hl + 56 + CT_CHUNK + 100, 5),
                1,
            ),
            (
                "chunk_2_tag_flipped",
                "one bit of chunk 2's tag",
                flip(full.clone(), hl + 56 + 3 * CT_CHUNK - 1, 0),
                2,
            ),
            (
                "final_chunk_flipped",
                "one bit of the final chunk",
                flip(full.clone(), hl + 56 + 3 * CT_CHUNK + 3, 0),
                3,
            ),
            (
                "payload_signature_on_anonymous_file",
                "an anonymous file whose chunks are followed by a segment signature by sam (a signed body under an anonymous header): the 64 bytes join the final chunk",
                s.signed_file(&k.sam),
                3,
            ),
        ];
        for (name, comment, data, released) in cases {
            self.add(
                V::new(name, pf, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.chunks(released)),
            );
        }
        // Re-sealed by the encoder with the wrong chunking.
        let wrong: Vec<(&str, &str, Vec<(u64, usize, usize)>, usize)> = vec![
            ("full_final_chunk", "a plaintext of 2 x 16384 bytes sealed as two full chunks with no empty final chunk", vec![(0, 0, CHUNK), (1, CHUNK, 2 * CHUNK)], 2),
            ("short_chunk_not_last", "chunk 0 sealed short (1000 bytes), then a final chunk: the short chunk joins the next in one piece", vec![(0, 0, 1000), (1, 1000, 1500)], 0),
            ("final_chunk_index_0", "two chunks, the final one sealed with index 0", vec![(0, 0, CHUNK), (0, CHUNK, CHUNK + 300)], 1),
            ("chunk_indices_from_1", "chunks sealed with indices 1 and 2 instead of 0 and 1", vec![(1, 0, CHUNK), (2, CHUNK, CHUNK + 300)], 0),
            ("extra_empty_chunk", "a plaintext of 300 bytes sealed as chunk 0 (300 bytes) and an extra empty chunk 1", vec![(0, 0, 300), (1, 300, 300)], 0),
        ];
        for (name, comment, pieces, released) in wrong {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &[(a, Hint::Real)], None, 2 * CHUNK);
            let header = p.header();
            let list: Vec<(u64, &[u8])> = pieces
                .iter()
                .map(|(i, from, to)| (*i, &p.pt[*from..*to]))
                .collect();
            let data = seal_pieces(&p.file_key, &header, p.salt, &list).file();
            self.add(
                V::new(name, pf, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.chunks(released)),
            );
        }
        // A chunk of another file with the same key and header context but another salt.
        let mut rng = seeded("chunk_from_other_file");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 2 * CHUNK + 10);
        let mut other = p.clone();
        other.salt[0] ^= 1;
        let mine = p.sealed();
        let theirs = other.sealed();
        let mut chunks = mine.chunks.clone();
        chunks[1] = theirs.chunks[1].clone();
        let data = Sealed { chunks, ..mine }.file();
        self.add(
            V::new(
                "chunk_from_other_file",
                pf,
                "chunk 1 taken from a file with the same file key and header but another salt",
                data,
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.chunks(1)),
        );
    }

    /// 255, 256 and 257 chunks: the chunk counter carries into its second byte.
    pub(super) fn chunk_counter(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        for (name, full, comment) in [
            (
                "chunks_255",
                254usize,
                "255 chunks: 254 full, a final one of 1000 bytes (last index 254)",
            ),
            (
                "chunks_256",
                255,
                "256 chunks: 255 full, a final one of 1000 bytes (last index 255)",
            ),
            (
                "chunks_257",
                256,
                "257 chunks: 256 full, a final one of 1000 bytes (last index 256 = 0x100)",
            ),
        ] {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &[(a, Hint::Real)], None, full * CHUNK + 1000);
            let data = p.bytes();
            assert_eq!(p.sealed().chunks.len(), full + 1);
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.pt),
            );
        }
        let name = "chunks_257_counter_8_bit";
        let mut rng = seeded(name);
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 256 * CHUNK + 1000);
        let pieces: Vec<(u64, &[u8])> = split(&p.pt)
            .into_iter()
            .enumerate()
            .map(|(i, c)| ((i % 256) as u64, c))
            .collect();
        let data = seal_pieces(&p.file_key, &p.header(), p.salt, &pieces).file();
        self.add(
            V::new(name, Expect::PayloadFailure, "257 chunks sealed by an encoder whose counter wraps at 8 bits: the final chunk (index 256) was sealed with index 0", data)
                .ids(&[a])
                .plan(&p)
                .released(&p.chunks(256)),
        );
    }
}
