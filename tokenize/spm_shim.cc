// spm_shim.cc - the project's one C++ file: SentencePiece behind extern "C".
// Exceptions and util::Status never cross into C; every failure becomes a
// pg_error message.
#include "tokenize/spm_shim.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

struct pg_spm {
    sentencepiece::SentencePieceProcessor proc;
};

extern "C" int pg_spm_load(const char *model_path, pg_spm **out, pg_error *err)
{
    *out = nullptr;
    pg_spm *m = new (std::nothrow) pg_spm;
    if (!m)
        return pg_fail(err, PG_ENOMEM, "%s: no memory for the model", model_path);
    try {
        auto st = m->proc.Load(model_path);
        if (!st.ok()) {
            delete m;
            return pg_fail(err, PG_EINVAL, "%s: not a SentencePiece model: %s", model_path,
                           st.ToString().c_str());
        }
    } catch (const std::exception &e) {
        delete m;
        return pg_fail(err, PG_EINVAL, "%s: loading the model failed: %s", model_path, e.what());
    }
    *out = m;
    return 0;
}

extern "C" void pg_spm_free(pg_spm *m) { delete m; }

extern "C" uint32_t pg_spm_vocab_size(const pg_spm *m)
{
    return (uint32_t)m->proc.GetPieceSize();
}

extern "C" const char *pg_spm_piece(const pg_spm *m, uint32_t id, size_t *len)
{
    const std::string &p = m->proc.IdToPiece((int)id);
    *len = p.size();
    return p.data();
}

extern "C" int64_t pg_spm_piece_id(const pg_spm *m, const char *piece)
{
    int id = m->proc.PieceToId(piece);
    if (id == m->proc.unk_id() && m->proc.IdToPiece(id) != piece)
        return -1;
    return id;
}

extern "C" int pg_spm_is_byte(const pg_spm *m, uint32_t id) { return m->proc.IsByte((int)id); }
extern "C" int pg_spm_is_control(const pg_spm *m, uint32_t id)
{
    return m->proc.IsControl((int)id);
}
extern "C" int pg_spm_is_unknown(const pg_spm *m, uint32_t id)
{
    return m->proc.IsUnknown((int)id);
}
extern "C" float pg_spm_score(const pg_spm *m, uint32_t id)
{
    return m->proc.GetScore((int)id);
}

extern "C" int64_t pg_spm_bos_id(const pg_spm *m) { return m->proc.bos_id(); }

extern "C" int pg_spm_encode(const pg_spm *m, const char *text, size_t len, uint32_t **ids,
                             size_t *n, size_t *cap, pg_error *err)
{
    try {
        std::vector<int> v;
        auto st = m->proc.Encode(absl::string_view(text, len), &v);
        if (!st.ok())
            return pg_fail(err, PG_EINVAL, "sentencepiece encode: %s", st.ToString().c_str());
        if (*n + v.size() > *cap) {
            size_t nc = *cap ? *cap : 256;
            while (nc < *n + v.size())
                nc *= 2;
            uint32_t *p = (uint32_t *)realloc(*ids, nc * sizeof *p);
            if (!p)
                return pg_fail(err, PG_ENOMEM, "sentencepiece encode: no memory");
            *ids = p;
            *cap = nc;
        }
        for (size_t i = 0; i < v.size(); i++)
            (*ids)[*n + i] = (uint32_t)v[i];
        *n += v.size();
    } catch (const std::exception &e) {
        return pg_fail(err, PG_ENOMEM, "sentencepiece encode: %s", e.what());
    }
    return 0;
}

namespace {
// Feeds "sentence<TAB>freq" lines (the trainer's tsv input format) from a C callback.
class CallbackIterator : public sentencepiece::SentenceIterator {
  public:
    CallbackIterator(pg_spm_next_fn next, void *ctx) : next_(next), ctx_(ctx) { Next(); }
    bool done() const override { return done_; }
    void Next() override
    {
        const char *s;
        size_t len;
        uint64_t freq;
        if (!next_(ctx_, &s, &len, &freq)) {
            done_ = true;
            return;
        }
        value_.assign(s, len);
        value_ += '\t';
        value_ += std::to_string(freq);
    }
    const std::string &value() const override { return value_; }
    sentencepiece::util::Status status() const override { return {}; }

  private:
    pg_spm_next_fn next_;
    void *ctx_;
    bool done_ = false;
    std::string value_;
};
} // namespace

extern "C" int pg_spm_train(const char *const *options, pg_spm_next_fn next, void *ctx,
                            char **model, size_t *model_len, pg_error *err)
{
    *model = nullptr;
    *model_len = 0;
    try {
        std::unordered_map<std::string, std::string> kw;
        for (size_t i = 0; options[i] && options[i + 1]; i += 2)
            kw[options[i]] = options[i + 1];
        kw["input_format"] = "tsv";
        CallbackIterator it(next, ctx);
        std::string proto;
        auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &proto);
        if (!st.ok())
            return pg_fail(err, PG_EINVAL, "sentencepiece training failed: %s",
                           st.ToString().c_str());
        char *buf = (char *)malloc(proto.size() ? proto.size() : 1);
        if (!buf)
            return pg_fail(err, PG_ENOMEM, "sentencepiece training: no memory for the model");
        memcpy(buf, proto.data(), proto.size());
        *model = buf;
        *model_len = proto.size();
    } catch (const std::exception &e) {
        return pg_fail(err, PG_ENOMEM, "sentencepiece training: %s", e.what());
    }
    return 0;
}
