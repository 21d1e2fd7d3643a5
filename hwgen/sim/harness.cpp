// hwgen bulk-simulation harness: streams frames through a verilated hwgen_top, no Python per cycle.
//
// Built by hwgen/sim/bulk.py with
//   verilator --cc --exe --build -O3 --prefix Vtop --top-module hwgen_top harness.cpp top.v
//
// Usage: hwgen_bulk --frames FILE --frame-bytes B --words W --out FILE
//                   [--beat-bytes E] [--seed S] [--gap-p P] [--stall-p Q]
//                   [--pattern NAME --pattern-len L] [--idle-limit N] [--progress K] [+hwgen_mem=DIR]
//
// Arguments starting with "+" are plusargs for the design: a shell whose
// memories load their contents at run time (hwgen/sim/memfiles.py) reads
// them from +hwgen_mem=DIR and stops ($fatal) without it.
//
// Input FILE: N * B bytes, frame after frame, each frame the bytes of one
// image in (y, x, c) order. They are offered on s_axis E bytes per beat
// (default 1; E must divide B; it should be s_axis_tdata's width in bytes,
// as hwgen/sim/bulk.py passes it: a wider E is refused), the first of them
// on bits 7..0, tlast on a frame's last beat; while a beat is not offered
// yet it is offered each cycle with probability 1 - P (seeded splitmix64),
// and once offered it stays offered until taken. m_axis_tready is low with
// probability Q each cycle. A pattern adds deterministic pauses on top: "last-beat" holds
// m_axis_tready low for L cycles whenever a frame's last word (tlast) is
// offered; "bursts" holds it low for L cycles, then lets the random rule
// decide for L cycles, and so on; "frame-gaps" offers no input for L cycles
// after each frame's last beat is taken. The run ends when N * W words came out, or after N idle cycles
// (no handshake on either side) once the design seems stuck.
//
// Output FILE (little-endian):
//   char magic[8] = "HWGSIM1\0"
//   uint64 frames, words_per_frame, words_received, cycles, status (0 done, 1 stuck), protocol_errors
//   uint32 words[words_received]      m_axis_tdata of every output handshake
//   uint8  lasts[words_received]      m_axis_tlast of every output handshake
//   uint64 in_first[frames], in_last[frames]    cycle of a frame's first / last input beat's handshake
//   uint64 out_first[frames], out_last[frames]  cycle of a frame's first / last output word (~0: none)
// A cycle is counted at each rising edge after reset, from 0. Protocol
// errors (m_axis data or tlast changing, or tvalid dropping, while stalled)
// are counted and the first ones printed on stderr. Progress lines
// "progress FRAMES CYCLES" go to stdout every K frames, then one summary line
// "done FRAMES CYCLES SECONDS".

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

namespace {

struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // uniform in [0, 1)
    double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

struct Options {
    std::string frames, out;
    uint64_t frame_bytes = 0, beat_bytes = 1, words = 0, seed = 0, idle_limit = 1000000, progress = 0;
    double gap_p = 0.0, stall_p = 0.0;
    std::string pattern = "none";
    uint64_t pattern_len = 0;
};

[[noreturn]] void die(const char* msg, const char* arg = "") {
    std::fprintf(stderr, "hwgen_bulk: %s%s\n", msg, arg);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("+", 0) == 0) continue;  // plusargs: Verilator's and the design's (+hwgen_mem=DIR)
        if (i + 1 >= argc) die("missing value after ", argv[i]);
        const char* v = argv[++i];
        if (a == "--frames") o.frames = v;
        else if (a == "--out") o.out = v;
        else if (a == "--frame-bytes") o.frame_bytes = std::strtoull(v, nullptr, 10);
        else if (a == "--beat-bytes") o.beat_bytes = std::strtoull(v, nullptr, 10);
        else if (a == "--words") o.words = std::strtoull(v, nullptr, 10);
        else if (a == "--seed") o.seed = std::strtoull(v, nullptr, 10);
        else if (a == "--idle-limit") o.idle_limit = std::strtoull(v, nullptr, 10);
        else if (a == "--progress") o.progress = std::strtoull(v, nullptr, 10);
        else if (a == "--gap-p") o.gap_p = std::strtod(v, nullptr);
        else if (a == "--stall-p") o.stall_p = std::strtod(v, nullptr);
        else if (a == "--pattern") o.pattern = v;
        else if (a == "--pattern-len") o.pattern_len = std::strtoull(v, nullptr, 10);
        else die("unknown option ", argv[i - 1]);
    }
    if (o.frames.empty() || o.out.empty() || !o.frame_bytes || !o.words)
        die("--frames, --out, --frame-bytes and --words are required");
    if (!o.beat_bytes || o.frame_bytes % o.beat_bytes) die("--beat-bytes must divide --frame-bytes");
    if (o.pattern != "none" && o.pattern != "last-beat" && o.pattern != "bursts" && o.pattern != "frame-gaps")
        die("--pattern must be none, last-beat, bursts or frame-gaps, not ", o.pattern.c_str());
    return o;
}

// s_axis_tdata <- n bytes, byte k on bits 8k..8k+7: Verilator's integer ports (up to 64 bits) ...
template <typename T>
void set_beat(T& port, const uint8_t* bytes, size_t n) {
    if (n > sizeof(T)) die("--beat-bytes is wider than s_axis_tdata");
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t(bytes[k]) << (8 * k);
    port = T(v);
}

// ... and its wide ports (arrays of 32-bit words, word 0 the lowest).
template <std::size_t N>
void set_beat(VlWide<N>& port, const uint8_t* bytes, size_t n) {
    if (n > 4 * N) die("--beat-bytes is wider than s_axis_tdata");
    for (size_t w = 0; w < N; ++w) {
        uint32_t v = 0;
        for (size_t k = 0; k < 4 && 4 * w + k < n; ++k) v |= uint32_t(bytes[4 * w + k]) << (8 * k);
        port[w] = v;
    }
}

template <typename T>
void put(std::FILE* f, const T* data, size_t n) {
    if (n && std::fwrite(data, sizeof(T), n, f) != n) die("cannot write the output file");
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);
    std::vector<uint8_t> bytes;
    {
        std::FILE* f = std::fopen(opt.frames.c_str(), "rb");
        if (!f) die("cannot open ", opt.frames.c_str());
        std::fseek(f, 0, SEEK_END);
        long size = std::ftell(f);
        std::fseek(f, 0, SEEK_SET);
        bytes.resize(size);
        if (size && std::fread(bytes.data(), 1, size, f) != (size_t)size) die("cannot read ", opt.frames.c_str());
        std::fclose(f);
    }
    if (bytes.size() % opt.frame_bytes) die("the frames file is not a whole number of frames");
    const uint64_t frames = bytes.size() / opt.frame_bytes;
    const uint64_t frame_beats = opt.frame_bytes / opt.beat_bytes, beats = bytes.size() / opt.beat_bytes;
    const uint64_t total_words = frames * opt.words;
    const uint64_t NONE = ~0ULL;

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vtop>(ctx.get());

    std::vector<uint32_t> words;
    std::vector<uint8_t> lasts;
    words.reserve(total_words);
    lasts.reserve(total_words);
    std::vector<uint64_t> in_first(frames, NONE), in_last(frames, NONE), out_first(frames, NONE),
        out_last(frames, NONE);

    // Reset: 4 cycles with rst high, nothing offered, nothing taken.
    top->s_axis_tvalid = 0;
    top->s_axis_tlast = 0;
    set_beat(top->s_axis_tdata, bytes.data(), 0);
    top->m_axis_tready = 0;
    top->rst = 1;
    for (int k = 0; k < 4; ++k) {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
    top->rst = 0;

    SplitMix64 rng{opt.seed};
    const bool gaps = opt.gap_p > 0.0, stalls = opt.stall_p > 0.0;
    uint64_t sent = 0, cycle = 0, idle = 0, errors = 0;
    uint64_t last_wait = 0, input_resume = 0;  // pattern state: cycles held on a last word; first cycle to offer
    const uint64_t plen = opt.pattern_len;
    bool offering = false, held = false;
    uint32_t held_data = 0;
    uint8_t held_last = 0;
    uint64_t status = 0;
    auto t0 = std::chrono::steady_clock::now();

    while (words.size() < total_words) {
        if (!offering && sent < beats && cycle >= input_resume && (!gaps || rng.uniform() >= opt.gap_p)) {
            offering = true;
            set_beat(top->s_axis_tdata, bytes.data() + sent * opt.beat_bytes, opt.beat_bytes);
            top->s_axis_tlast = (sent + 1) % frame_beats == 0;
        }
        top->s_axis_tvalid = offering;
        bool ready = !stalls || rng.uniform() >= opt.stall_p;
        if (opt.pattern == "last-beat" && top->m_axis_tvalid && top->m_axis_tlast && last_wait < plen) {
            ready = false;
            ++last_wait;
        } else if (opt.pattern == "bursts" && plen && (cycle / plen) % 2 == 0) {
            ready = false;
        }
        top->m_axis_tready = ready;
        top->clk = 0;
        top->eval();

        bool progress = false;
        if (offering && top->s_axis_tready) {
            const uint64_t frame = sent / frame_beats;
            if (sent % frame_beats == 0) in_first[frame] = cycle;
            if ((sent + 1) % frame_beats == 0) {
                in_last[frame] = cycle;
                if (opt.pattern == "frame-gaps") input_resume = cycle + 1 + plen;
            }
            ++sent;
            offering = false;
            progress = true;
        }
        if (top->m_axis_tvalid) {
            const uint32_t data = top->m_axis_tdata;
            const uint8_t last = top->m_axis_tlast;
            if (held && (data != held_data || last != held_last)) {
                if (errors++ < 5)
                    std::fprintf(stderr, "hwgen_bulk: cycle %llu: output word %zu changed while stalled\n",
                                 (unsigned long long)cycle, words.size());
            }
            if (ready) {
                const uint64_t frame = words.size() / opt.words;
                if (words.size() % opt.words == 0) out_first[frame] = cycle;
                if ((words.size() + 1) % opt.words == 0) {
                    out_last[frame] = cycle;
                    if (opt.progress && (frame + 1) % opt.progress == 0) {
                        std::printf("progress %llu %llu\n", (unsigned long long)(frame + 1),
                                    (unsigned long long)cycle);
                        std::fflush(stdout);
                    }
                }
                words.push_back(data);
                lasts.push_back(last);
                if (last) last_wait = 0;
                held = false;
                progress = true;
            } else {
                held = true;
                held_data = data;
                held_last = last;
            }
        } else if (held) {
            if (errors++ < 5)
                std::fprintf(stderr, "hwgen_bulk: cycle %llu: m_axis_tvalid dropped before word %zu was taken\n",
                             (unsigned long long)cycle, words.size());
            held = false;
        }

        top->clk = 1;
        top->eval();
        ++cycle;
        idle = progress ? 0 : idle + 1;
        if (idle > opt.idle_limit) {
            status = 1;
            break;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    top->final();

    std::FILE* f = std::fopen(opt.out.c_str(), "wb");
    if (!f) die("cannot create ", opt.out.c_str());
    const char magic[8] = {'H', 'W', 'G', 'S', 'I', 'M', '1', '\0'};
    put(f, magic, 8);
    const uint64_t header[6] = {frames, opt.words, (uint64_t)words.size(), cycle, status, errors};
    put(f, header, 6);
    put(f, words.data(), words.size());
    put(f, lasts.data(), lasts.size());
    put(f, in_first.data(), frames);
    put(f, in_last.data(), frames);
    put(f, out_first.data(), frames);
    put(f, out_last.data(), frames);
    std::fclose(f);
    std::printf("done %llu %llu %.6f\n", (unsigned long long)(words.size() / opt.words), (unsigned long long)cycle,
                seconds);
    return 0;
}
