/* spec.h - the job spec: a YAML (or JSON) film description -> a validated rf_job_spec.
 *
 * The parser walks the whole document once against a fixed schema and collects every
 * mistake it finds (up to RF_SPEC_MAX_ERRORS), each as "FILE:LINE: FIELD ... allowed ...,
 * got ...". Unknown keys are errors (with "did you mean"), quoted scalars are strings
 * (`width: "832"` is refused), and every number is range-checked. A spec that parses is
 * complete: defaults are filled in and the derived values (frames per shot, timelines)
 * are computed. The parser never touches the file system beyond reading the spec, never
 * resolves the model (see rf_spec_resolve_model) and never fetches inputs.
 */
#ifndef RF_SPEC_H
#define RF_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "error.h"

/* ---- limits (documented; every one is checked) --------------------------------------
 * Defaults (WAN_SPEC.md §4, the Wan2.1 T2V release): steps 50, guidance 5.0, shift 5.0,
 * sampler unipc, fps 16, chunk {frames 81, overlap 16, sync_every 1, checkpoint_every 5,
 * weights linear}, mode lockstep, codec h264 (png for a still), crf 18 (h264) / 23 (h265),
 * priority 0, inputs.strength 0.7 (video only; 0 otherwise), transition blend. A missing seed stays unset
 * (seed_set = 0): the caller picks one and records it. A missing name is taken from the
 * spec's file name (when that is a valid name) or "job". A missing output.path is
 * "<name>.<ext>" (mp4, mov, mkv), "<name>/" for a PNG sequence, "<name>.png" for a still.
 * A missing plan section (or part of it) stays unset: the coordinator fills it at submit.
 */
#define RF_SPEC_MAX_BYTES       (1 << 20) /* spec text */
#define RF_SPEC_MAX_ERRORS      16        /* collected per parse; the rest are counted */
#define RF_SPEC_MAX_NAME        128       /* name: letters, digits, '.', '_', '-' */
#define RF_SPEC_MAX_PROMPT      4096      /* bytes of a prompt or negative prompt */
#define RF_SPEC_MAX_PATH        4096      /* bytes of a path or URL */
#define RF_SPEC_MAX_SHOTS       1000
#define RF_SPEC_MIN_SIZE        16 /* width, height: multiples of 16 in [16, 4096] */
#define RF_SPEC_MAX_SIZE        4096
#define RF_SPEC_MAX_FPS         120    /* fps: integer in [1, 120] */
#define RF_SPEC_MIN_SHOT_FRAMES 5      /* a shot is at least 5 pixel frames (2 latent frames) */
#define RF_SPEC_MAX_FRAMES      172800 /* pixel frames of the whole film (2 h at 24 fps) */
#define RF_SPEC_MAX_STEPS       1000
#define RF_SPEC_MAX_GUIDANCE    50.0 /* guidance in [0, 50]; shift in (0, 100] */
#define RF_SPEC_MAX_SHIFT       100.0
#define RF_SPEC_MAX_CHUNK       1001   /* chunk.frames: 4n+1 in [5, 1001] */
#define RF_SPEC_MAX_SYNC        1000   /* sync_every, checkpoint_every in [1, 1000] */
#define RF_SPEC_MAX_PRIORITY    100    /* priority: integer in [-100, 100], higher first */
#define RF_SPEC_MAX_SCALED      8192   /* output.scale result: each side in [2, 8192], even */
#define RF_SPEC_MAX_SEGMENT     100000 /* plan.decode_segment: latent frames in [1, 100000] */
#define RF_SPEC_MAX_WARMUP      999    /* plan.decode_warmup: latent frames in [0, 999] */

typedef enum rf_sampler_kind {
    RF_SAMPLER_UNIPC = 0,
    RF_SAMPLER_EULER,
    RF_SAMPLER_DPMPP /* spelled "dpm++" */
} rf_sampler_kind;

typedef enum rf_fusion_weights {
    RF_WEIGHTS_LINEAR = 0,
    RF_WEIGHTS_UNIFORM,
    RF_WEIGHTS_COSINE
} rf_fusion_weights;

typedef enum rf_job_mode { RF_MODE_LOCKSTEP = 0, RF_MODE_INDEPENDENT } rf_job_mode;

/* How a shot begins: blend (shares the previous shot's timeline) or a hard cut (starts a
 * new timeline). Ignored on the first shot. */
typedef enum rf_transition { RF_TRANSITION_BLEND = 0, RF_TRANSITION_CUT } rf_transition;

typedef enum rf_input_kind {
    RF_INPUT_NONE = 0,
    RF_INPUT_IMAGE,   /* animate an image: latent frame 0 */
    RF_INPUT_VIDEO,   /* restyle a clip (SDEdit) with strength */
    RF_INPUT_CONTINUE /* continue a clip: its frames are the known beginning */
} rf_input_kind;

/* Which tuning fields the spec gave explicitly (the rest are defaults a model's own
 * model.json may override). */
enum {
    RF_SPEC_SET_STEPS = 1u << 0,
    RF_SPEC_SET_GUIDANCE = 1u << 1,
    RF_SPEC_SET_SHIFT = 1u << 2,
    RF_SPEC_SET_SAMPLER = 1u << 3,
    RF_SPEC_SET_CODEC = 1u << 4,
    RF_SPEC_SET_CRF = 1u << 5,
    RF_SPEC_SET_OUTPUT_PATH = 1u << 6,
    RF_SPEC_SET_NAME = 1u << 7,
};

typedef struct rf_spec_shot {
    char *prompt;   /* owned, non-empty */
    char *negative; /* owned; NULL = plan.negative (the model's default negative prompt) */
    double seconds; /* as written; 0 when the shot gave frames */
    rf_transition transition;
    int line; /* line of the shot in the spec */
    /* derived */
    int64_t frames;      /* pixel frames: `frames`, or round(seconds * fps), half up */
    int timeline;        /* index into rf_job_spec.timelines */
    int64_t start_frame; /* first pixel frame within its timeline */
} rf_spec_shot;

/* A run of shots joined by blends. The timeline is rendered to render_frames (the
 * smallest 4n+1 >= frames; latent_frames = (render_frames-1)/4+1) and trimmed to frames. */
typedef struct rf_spec_timeline {
    int first_shot, shot_count;
    int64_t frames;        /* sum of its shots' frames */
    int64_t render_frames; /* 4n+1 >= frames */
    int64_t latent_frames;
    int64_t film_start; /* first pixel frame in the whole film */
} rf_spec_timeline;

typedef struct rf_job_spec {
    char *source; /* owned: the file name given to the parser, for messages */
    char *name;
    char *model; /* a model name (looked up in model directories) or a path, as written */
    int width, height;
    int fps;
    uint64_t seed; /* in [0, 2^63-1] */
    int seed_set;
    int steps;
    double guidance;
    rf_sampler_kind sampler;
    double shift;
    struct {
        int frames, overlap; /* pixel frames: 4n+1, multiple of 4, overlap < frames */
        int sync_every, checkpoint_every;
        rf_fusion_weights weights;
    } chunk;
    rf_job_mode mode;
    int still; /* 1: a single image (frames: 1 or still: true) */
    rf_spec_shot *shots;
    int shot_count;
    struct {
        rf_input_kind kind;
        char *path;      /* owned; NULL when kind is NONE */
        int is_url;      /* path is http:// or https:// */
        double strength; /* video only, in [0, 1] */
    } inputs;
    struct {
        char *path; /* owned */
        rf_codec codec;
        int crf;                       /* -1 when the codec has none */
        int scale_width, scale_height; /* 0, 0: no resize */
    } output;
    int priority;
    /* The rest of what a job's plan is cut from, fixed when the job is submitted: the
     * coordinator fills what the spec leaves out (from the model's model.json and its own
     * --segment-frames) and stores the spec with them, so a restart re-plans the same job
     * whatever changed since. A spec may give them; most leave them out. */
    struct {
        char *negative;     /* owned; the negative prompt of shots without one ("": none);
                             * NULL: not given */
        int decode_segment; /* latent frames per DECODE segment; 0: not given */
        int decode_warmup;  /* latent frames a DECODE segment decodes before its start and
                             * discards (the VAE's warm-up); -1: not given */
    } plan;
    unsigned explicit_fields; /* RF_SPEC_SET_* */
    /* derived */
    rf_spec_timeline *timelines;
    int timeline_count;
    int64_t total_frames; /* pixel frames of the film (1 for a still) */
} rf_job_spec;

/* One problem found in a spec. `msg` is the full line: "film.yaml:12: chunk.frames must
 * be 4n+1 (5, 9, ..., 81, ...), got 30". */
typedef struct rf_spec_diag {
    int line; /* 1-based; 0 when not tied to a line */
    char field[96];
    char msg[320];
} rf_spec_diag;

typedef struct rf_spec_diags {
    int count;   /* items filled */
    int dropped; /* further problems found but not kept */
    rf_spec_diag items[RF_SPEC_MAX_ERRORS];
} rf_spec_diags;

/* Parses and validates spec text (YAML 1.1 block or flow style, or JSON) of len bytes.
 * source names it in messages (e.g. "film.yaml"; NULL -> "<spec>"). Returns a new spec
 * (caller frees with rf_spec_free), or NULL with every problem in diags (may be NULL)
 * and in err: the first RF_SPEC_MAX_ERRORS messages joined by '\n' as far as they fit,
 * code RF_EINVAL (RF_ENOMEM when memory ran out). */
rf_job_spec *rf_spec_parse(const char *text, size_t len, const char *source, rf_spec_diags *diags,
                           rf_error *err);

/* Reads path (at most RF_SPEC_MAX_BYTES) and parses it with path as the source name.
 * An unreadable file is RF_EIO / RF_ENOTFOUND naming the path. */
rf_job_spec *rf_spec_load(const char *path, rf_spec_diags *diags, rf_error *err);

/* Frees a spec and NULLs *spec; safe on NULL and twice. */
void rf_spec_free(rf_job_spec **spec);

/* The command line's -o: replaces output.path and re-checks it against the codec (when
 * the spec did not name a codec, the codec follows the new path's extension as in the
 * spec). On error the spec is unchanged. */
int rf_spec_set_output_path(rf_job_spec *spec, const char *path, rf_error *err);

/* Finds spec->model: a value holding '/' or starting with '.' or '~' is a path and must
 * exist; otherwise DIR/NAME is tried in each of the ndirs directories in order. Sets
 * *out_path to a new string (caller frees) or returns RF_ENOTFOUND with every place
 * searched in the message. */
int rf_spec_resolve_model(const char *model, const char *const *dirs, size_t ndirs, char **out_path,
                          rf_error *err);

enum {
    RF_SPEC_JSON_PRETTY = 1u << 0,  /* indented (else compact) */
    RF_SPEC_JSON_DERIVED = 1u << 1, /* add "derived": frames, timelines (not re-parseable) */
};

/* The effective spec (defaults filled in, shots in frames) as JSON text; without
 * RF_SPEC_JSON_DERIVED the text is itself a valid spec that parses back to the same
 * spec. Caller frees. NULL with err when memory runs out. */
char *rf_spec_to_json(const rf_job_spec *spec, unsigned flags, rf_error *err);

/* The canonical form for hashing: compact JSON, keys sorted, every effective value, no
 * source file or lines. Two specs that mean the same job have the same canonical text.
 * Caller frees. */
char *rf_spec_canonical(const rf_job_spec *spec, rf_error *err);

/* The Wan2.1 T2V release's default negative prompt (WAN_SPEC.md §4): what a model without
 * its own defaults.negative is guided away from, in the engine and on the farm alike. */
const char *rf_spec_wan21_negative(void);

const char *rf_sampler_name(rf_sampler_kind s);
const char *rf_weights_name(rf_fusion_weights w);
const char *rf_mode_name(rf_job_mode m);
const char *rf_input_kind_name(rf_input_kind k); /* "none", "image", "video", "continue" */

#endif
