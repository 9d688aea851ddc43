#include "session/token_signer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>

namespace sluice::session {
namespace {

constexpr std::string_view kB64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kB64Url[(n >> 18) & 63];
    out += kB64Url[(n >> 12) & 63];
    out += kB64Url[(n >> 6) & 63];
    out += kB64Url[n & 63];
  }
  if (i < in.size()) {
    unsigned n = at(i) << 16;
    if (i + 1 < in.size()) n |= at(i + 1) << 8;
    out += kB64Url[(n >> 18) & 63];
    out += kB64Url[(n >> 12) & 63];
    if (i + 1 < in.size()) out += kB64Url[(n >> 6) & 63];
  }
  return out;
}

constexpr std::array<signed char, 256> kB64UrlValue = [] {
  std::array<signed char, 256> v{};
  v.fill(-1);
  for (std::size_t i = 0; i < kB64Url.size(); ++i) {
    v[static_cast<unsigned char>(kB64Url[i])] = static_cast<signed char>(i);
  }
  return v;
}();

// Appends the bytes `in` encodes to `out`; false on a character outside the alphabet.
template <class Out>
bool b64url_decode(std::string_view in, Out out) {
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int value = kB64UrlValue[static_cast<unsigned char>(c)];
    if (value < 0) return false;
    acc = (acc << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out(static_cast<unsigned char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

MdCtx new_md_ctx() {
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) throw std::runtime_error("out of memory for a SHA-256 context");
  return ctx;
}

}  // namespace

// HMAC (RFC 2104) from two SHA-256 states that have already absorbed the padded key: one
// for the inner hash, one for the outer. Each MAC copies them into this thread's scratch
// context, so the key is hashed once per process and no context is created per call (an
// EVP_MAC_CTX_dup cost ten allocations; a digest copy costs one).
struct TokenSigner::Keyed {
  // Names this key in the verified-token caches, which outlive it: never reused, unlike an
  // address.
  const std::uint64_t generation = next_generation.fetch_add(1, std::memory_order_relaxed);
  MdCtx inner = new_md_ctx();
  MdCtx outer = new_md_ctx();
  static inline std::atomic<std::uint64_t> next_generation{1};

  explicit Keyed(std::string_view key) {
    std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr),
                                                           EVP_MD_free);
    if (!sha256) throw std::runtime_error("OpenSSL has no SHA-256");
    constexpr std::size_t kBlock = 64;
    std::array<unsigned char, kBlock> k0{};
    unsigned int len = 0;
    if (key.size() > kBlock) {
      if (EVP_Digest(key.data(), key.size(), k0.data(), &len, sha256.get(), nullptr) != 1) {
        throw std::runtime_error("cannot hash the session key");
      }
    } else {
      std::copy(key.begin(), key.end(), k0.begin());
    }
    std::array<unsigned char, kBlock> pad{};
    for (auto [ctx, x] : {std::pair{inner.get(), 0x36}, std::pair{outer.get(), 0x5c}}) {
      for (std::size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<unsigned char>(k0[i] ^ x);
      if (EVP_DigestInit_ex(ctx, sha256.get(), nullptr) != 1 ||
          EVP_DigestUpdate(ctx, pad.data(), pad.size()) != 1) {
        throw std::runtime_error("cannot key HMAC-SHA256");
      }
    }
    OPENSSL_cleanse(k0.data(), k0.size());
    OPENSSL_cleanse(pad.data(), pad.size());
  }

  using Mac = std::array<unsigned char, 32>;

  Mac mac(std::string_view payload) const {
    thread_local MdCtx scratch = new_md_ctx();
    Mac inner_hash{};
    Mac out{};
    if (EVP_MD_CTX_copy_ex(scratch.get(), inner.get()) != 1 ||
        EVP_DigestUpdate(scratch.get(), payload.data(), payload.size()) != 1 ||
        EVP_DigestFinal_ex(scratch.get(), inner_hash.data(), nullptr) != 1 ||
        EVP_MD_CTX_copy_ex(scratch.get(), outer.get()) != 1 ||
        EVP_DigestUpdate(scratch.get(), inner_hash.data(), inner_hash.size()) != 1 ||
        EVP_DigestFinal_ex(scratch.get(), out.data(), nullptr) != 1) {
      throw std::runtime_error("HMAC-SHA256 failed");
    }
    return out;
  }
};

TokenSigner::TokenSigner(std::string key) {
  if (key.size() < 32) throw std::invalid_argument("session_key: needs at least 32 bytes");
  keyed_ = std::make_shared<const Keyed>(key);
  OPENSSL_cleanse(key.data(), key.size());
}

TokenSigner TokenSigner::random() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    throw std::runtime_error("cannot draw a random session key from OpenSSL");
  }
  return TokenSigner(std::move(key));
}

std::string TokenSigner::sign(std::string_view payload) const {
  const auto mac = keyed_->mac(payload);
  return b64url_encode(payload) + "." +
         b64url_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

namespace {

// Tokens this thread verified lately: clients send the same session id with every request,
// and the MAC is most of what a lookup costs. A hit needs the very same token under the very
// same key, so it proves what the MAC proved; callers still check expiry and ending on every
// lookup. Each token may sit in one of two slots picked by halves of its hash, and takes the
// one used less lately: with one slot per token, a few dozen sessions on a thread already
// collided often enough that two in five lookups paid the MAC. Slots fill only as tokens
// arrive (a token and its payload, about 200 bytes each).
struct VerifiedTokens {
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kMaxToken = 512;  // longer tokens are verified every time
  struct Entry {
    std::uint64_t generation = 0;
    std::uint64_t used = 0;  // when last hit or filled, in lookups
    std::string token;
    std::string payload;
  };
  std::array<Entry, kSlots> entries;
  std::uint64_t clock = 0;

  static VerifiedTokens& mine() {
    thread_local VerifiedTokens cache;
    return cache;
  }
  // The entry holding `token` under `generation`, or the one to replace with it.
  std::pair<Entry*, bool> find(std::string_view token, std::uint64_t generation) {
    const std::size_t h = std::hash<std::string_view>{}(token);
    Entry& a = entries[h % kSlots];
    Entry& b = entries[(h >> 32) % kSlots];
    ++clock;
    for (Entry* e : {&a, &b}) {
      if (e->generation == generation && e->token == token) {
        e->used = clock;
        return {e, true};
      }
    }
    return {a.used <= b.used ? &a : &b, false};
  }
};

}  // namespace

std::optional<std::string> TokenSigner::verify(std::string_view token) const {
  VerifiedTokens* cache = nullptr;
  VerifiedTokens::Entry* cached = nullptr;
  if (token.size() <= VerifiedTokens::kMaxToken) {
    cache = &VerifiedTokens::mine();
    const auto [entry, hit] = cache->find(token, keyed_->generation);
    if (hit) return entry->payload;
    cached = entry;
  }
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  // The signature is 32 bytes, 43 characters unpadded; anything else cannot match.
  const std::string_view sig_text = token.substr(dot + 1);
  if (sig_text.size() != 43) return std::nullopt;
  Keyed::Mac sig{};
  std::size_t n = 0;
  if (!b64url_decode(sig_text, [&](unsigned char b) { sig[n++ % sig.size()] = b; })) {
    return std::nullopt;
  }
  std::string payload(dot * 3 / 4, '\0');  // what `dot` characters decode to, at most
  n = 0;
  if (!b64url_decode(token.substr(0, dot),
                     [&](unsigned char b) { payload[n++] = static_cast<char>(b); })) {
    return std::nullopt;
  }
  payload.resize(n);
  const auto expected = keyed_->mac(payload);
  if (CRYPTO_memcmp(sig.data(), expected.data(), expected.size()) != 0) return std::nullopt;
  if (cached != nullptr) {
    cached->generation = keyed_->generation;
    cached->used = cache->clock;
    cached->token.assign(token);
    cached->payload = payload;
  }
  return payload;
}

}  // namespace sluice::session
