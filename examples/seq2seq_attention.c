/* Sequence to sequence with additive (Bahdanau) attention, as the attention_keras NMT
   example builds it, through dlk's public API: rewrite dates "24 Nov 2026" -> "2026-11-24".

     encoder   embedding -> GRU over the (padded) date characters; enc_lengths mark the
               padding, so attention never looks at it
     decoder   embedding -> GRU over the target shifted right (teacher forcing), started
               from the encoder's final state
     attention dlk_additive_attention_forward(encoder outputs, decoder outputs)
     output    dense softmax over [decoder output; context], cross-entropy, Adam

   It prints the loss and the exact-match accuracy of greedy decoding on held-out dates
   (chance: 11^-10), then decodes one date step by step (the decoder loop calls the
   attention with Td = 1 each step) and writes its attention matrix as text and as an SVG
   heatmap: PREFIX.txt and PREFIX.svg (PREFIX = argv[1], default "attention"). Runs on the
   default device (the first GPU, else the CPU); exits 1 unless the held-out accuracy is
   well above chance. */
#include <dlk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call)                                                                   \
  do {                                                                              \
    dlk_status s_ = (call);                                                         \
    if (s_ != DLK_OK) {                                                             \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, dlk_status_string(s_), \
              dlk_context_last_error(ctx));                                         \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* Sizes: batch, encoder/decoder steps, embedding, GRU hidden (= He = Hd), attention A. */
enum { B = 32, TE = 11, TD = 10, E = 16, H = 32, A = 16, NEVAL = 256, STEPS = 300 };

/* Vocabularies. Input: 0 pad, then the characters of "DD Mon YYYY". Output classes: the
   digits and '-'; the decoder's input adds a start symbol. */
static const char IN_CHARS[] = "0123456789 JanFebMrApyulgSOctNovD";
enum { V_IN = sizeof IN_CHARS, V_OUT = 11, START = 11, V_DEC = 12 };
static const char OUT_CHARS[] = "0123456789-";
static const char *const MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static dlk_context *ctx;

static unsigned rnd(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}
static float frand(unsigned *s) {
  return (float)rnd(s) / 16777216.0f;
}

/* A random date of the training set (held_out 0) or of the held-out one (1: the dates
   whose (year, month, day) number is a multiple of 7; never trained on): the input text
   ("3 Feb 1999") and the target ("1999-02-03"). */
static void make_date(unsigned *s, int held_out, char in[32], char out[32]) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, m, d;
  do {
    y = 1950 + (int)(rnd(s) % 100), m = (int)(rnd(s) % 12);
    d = 1 + (int)(rnd(s) % (unsigned)days[m]);
  } while (((y * 372 + m * 31 + d) % 7 == 0) != held_out);
  snprintf(in, 32, "%d %s %d", d, MONTHS[m], y);
  snprintf(out, 32, "%04d-%02d-%02d", y, m + 1, d);
}

static int in_id(char c) {
  return (int)(strchr(IN_CHARS, c) - IN_CHARS) + 1; /* 0 is the padding */
}
static int out_id(char c) {
  return (int)(strchr(OUT_CHARS, c) - OUT_CHARS);
}

/* A parameter: the tensor, its gradient and Adam's moments. */
typedef struct param {
  dlk_tensor w, g, m, v;
} param;

static dlk_tensor tensor(dlk_dtype dt, int ndim, const int64_t *shape) {
  dlk_tensor t;
  TRY(dlk_tensor_alloc(ctx, &t, dt, ndim, shape));
  return t;
}

static void param_init(param *p, int ndim, const int64_t *shape, float scale, unsigned *seed) {
  p->w = tensor(DLK_F32, ndim, shape), p->g = tensor(DLK_F32, ndim, shape);
  p->m = tensor(DLK_F32, ndim, shape), p->v = tensor(DLK_F32, ndim, shape);
  const int64_t n = dlk_tensor_numel(&p->w);
  float *h = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) h[i] = scale * (2.0f * frand(seed) - 1.0f);
  TRY(dlk_tensor_write(ctx, &p->w, h, (size_t)n * sizeof(float)));
  TRY(dlk_tensor_zero(ctx, &p->m));
  TRY(dlk_tensor_zero(ctx, &p->v));
  free(h);
}

/* Columns [c0, c0 + n) of a [rows, cols] tensor viewed as [b, t, n]. */
static dlk_tensor cols3(const dlk_tensor *m, int64_t b, int64_t t, int64_t c0, int64_t n) {
  dlk_tensor v, r;
  TRY(dlk_tensor_slice(ctx, &v, m, 1, c0, n));
  r = v;
  r.ndim = 3;
  r.shape[0] = b, r.shape[1] = t, r.shape[2] = n;
  r.strides[0] = t * m->strides[0], r.strides[1] = m->strides[0], r.strides[2] = m->strides[1];
  return r;
}

/* The model. */
typedef struct model {
  param emb_in, emb_dec; /* [V_IN, E], [V_DEC, E] */
  param enc[4], dec[4];  /* GRU weight_ih, weight_hh, bias_ih, bias_hh */
  param w_a, u_a, v_a;   /* attention [H, A], [H, A], [A] */
  param out_w, out_b;    /* dense [V_OUT, 2H], [V_OUT] */
  dlk_rnn_weights enc_w, dec_w;
  dlk_rnn_grads enc_g, dec_g;
} model;

static void model_init(model *md, unsigned *seed) {
  const float k = 1.0f / sqrtf((float)H);
  param_init(&md->emb_in, 2, (int64_t[]){V_IN, E}, 1.0f, seed);
  param_init(&md->emb_dec, 2, (int64_t[]){V_DEC, E}, 1.0f, seed);
  for (int r = 0; r < 2; r++) {
    param *g = r ? md->dec : md->enc;
    param_init(&g[0], 2, (int64_t[]){3 * H, E}, k, seed);
    param_init(&g[1], 2, (int64_t[]){3 * H, H}, k, seed);
    param_init(&g[2], 1, (int64_t[]){3 * H}, k, seed);
    param_init(&g[3], 1, (int64_t[]){3 * H}, k, seed);
    *(r ? &md->dec_w : &md->enc_w) = (dlk_rnn_weights){&g[0].w, &g[1].w, &g[2].w, &g[3].w, NULL};
    *(r ? &md->dec_g : &md->enc_g) = (dlk_rnn_grads){&g[0].g, &g[1].g, &g[2].g, &g[3].g, NULL};
  }
  param_init(&md->w_a, 2, (int64_t[]){H, A}, k, seed);
  param_init(&md->u_a, 2, (int64_t[]){H, A}, k, seed);
  param_init(&md->v_a, 1, (int64_t[]){A}, 1.0f / sqrtf((float)A), seed);
  param_init(&md->out_w, 2, (int64_t[]){V_OUT, 2 * H}, 1.0f / sqrtf(2.0f * H), seed);
  param_init(&md->out_b, 1, (int64_t[]){V_OUT}, 0.0f, seed);
}

/* Every parameter of the model, for the optimizer; returns how many. */
static int model_params(model *md, param **all) {
  int k = 0;
  all[k++] = &md->emb_in, all[k++] = &md->emb_dec;
  for (int j = 0; j < 4; j++) all[k++] = &md->enc[j], all[k++] = &md->dec[j];
  all[k++] = &md->w_a, all[k++] = &md->u_a, all[k++] = &md->v_a;
  all[k++] = &md->out_w, all[k++] = &md->out_b;
  return k;
}

/* Encoder ids [n, TE] (0-padded) and lengths of n dates of a set; decoder inputs (start, then the
   target shifted right) and targets [n, TD]. */
static void batch_ids(unsigned *s, int held_out, int n, int32_t *enc_ids, int32_t *lens,
                      int32_t *dec_in, int32_t *tgt) {
  for (int b = 0; b < n; b++) {
    char in[32], out[32];
    make_date(s, held_out, in, out);
    lens[b] = (int32_t)strlen(in);
    for (int j = 0; j < TE; j++) enc_ids[b * TE + j] = j < lens[b] ? in_id(in[j]) : 0;
    for (int i = 0; i < TD; i++) {
      tgt[b * TD + i] = out_id(out[i]);
      dec_in[b * TD + i] = i == 0 ? START : out_id(out[i - 1]);
    }
  }
}

/* Greedy decoding of n dates, one decoder step per call: the GRU one step from the carried
   state, the attention with Td = 1, the dense layer, the argmax as the next input. Fills
   pred [n, TD] and, when attn is not NULL, the weights of sequence 0 [TD, TE]. */
static void greedy(model *md, int n, const dlk_tensor *enc_ids, const dlk_tensor *lens,
                   int32_t *pred, float *attn) {
  dlk_rnn_params ip = {.mode = DLK_RNN_GRU, .hidden_size = H, .num_layers = 1, .batch_first = 1};
  dlk_tensor xe = tensor(DLK_F32, 3, (int64_t[]){n, TE, E}),
             eo = tensor(DLK_F32, 3, (int64_t[]){n, TE, H});
  dlk_tensor h[2] = {tensor(DLK_F32, 3, (int64_t[]){1, n, H}),
                     tensor(DLK_F32, 3, (int64_t[]){1, n, H})};
  dlk_tensor ids = tensor(DLK_I32, 2, (int64_t[]){n, 1}),
             xd = tensor(DLK_F32, 3, (int64_t[]){n, 1, E});
  dlk_tensor yd = tensor(DLK_F32, 3, (int64_t[]){n, 1, H}),
             w1 = tensor(DLK_F32, 3, (int64_t[]){n, 1, TE});
  dlk_tensor cat = tensor(DLK_F32, 2, (int64_t[]){n, 2 * H}),
             logits = tensor(DLK_F32, 2, (int64_t[]){n, V_OUT});
  dlk_tensor cat_dec = cols3(&cat, n, 1, 0, H), cat_ctx = cols3(&cat, n, 1, H, H);
  TRY(dlk_embedding_forward(ctx, NULL, enc_ids, &md->emb_in.w, &xe));
  TRY(dlk_rnn_forward(ctx, &ip, &md->enc_w, &xe, lens, NULL, NULL, &eo, &h[0], NULL, NULL));
  int32_t *tok = malloc((size_t)n * sizeof(int32_t));
  float *lg = malloc((size_t)n * V_OUT * sizeof(float)), wrow[TE];
  for (int b = 0; b < n; b++) tok[b] = START;
  dlk_linear_params lin = {DLK_ACT_NONE};
  for (int i = 0; i < TD; i++) {
    TRY(dlk_tensor_write(ctx, &ids, tok, (size_t)n * sizeof(int32_t)));
    TRY(dlk_embedding_forward(ctx, NULL, &ids, &md->emb_dec.w, &xd));
    TRY(dlk_rnn_forward(ctx, &ip, &md->dec_w, &xd, NULL, &h[i % 2], NULL, &yd, &h[1 - i % 2], NULL,
                        NULL));
    TRY(dlk_additive_attention_forward(ctx, &eo, &yd, &md->w_a.w, &md->u_a.w, &md->v_a.w, lens,
                                       &cat_ctx, &w1));
    TRY(dlk_tensor_copy(ctx, &cat_dec, &yd));
    TRY(dlk_linear_forward(ctx, &lin, &cat, &md->out_w.w, &md->out_b.w, &logits, NULL));
    TRY(dlk_tensor_read(ctx, &logits, lg, (size_t)n * V_OUT * sizeof(float)));
    for (int b = 0; b < n; b++) {
      int best = 0;
      for (int c = 1; c < V_OUT; c++)
        if (lg[b * V_OUT + c] > lg[b * V_OUT + best]) best = c;
      pred[b * TD + i] = tok[b] = best;
    }
    if (attn) {
      dlk_tensor row;
      TRY(dlk_tensor_slice(ctx, &row, &w1, 0, 0, 1));
      TRY(dlk_tensor_read(ctx, &row, wrow, sizeof wrow));
      memcpy(attn + i * TE, wrow, sizeof wrow);
    }
  }
  dlk_tensor *ts[] = {&xe, &eo, &h[0], &h[1], &ids, &xd, &yd, &w1, &cat, &logits};
  for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) dlk_tensor_free(ctx, ts[k]);
  free(tok), free(lg);
}

/* The attention matrix of one decoded date: rows output characters, columns input ones. */
static void write_attention(const char *prefix, const char *in, const char *out, const float *w) {
  const int te = (int)strlen(in);
  char path[512];
  snprintf(path, sizeof path, "%s.txt", prefix);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fprintf(f, "# additive attention weights: row = output character, column = input character\n");
  fprintf(f, "%4s", "");
  for (int j = 0; j < te; j++) fprintf(f, "      '%c'", in[j]);
  fprintf(f, "\n");
  for (int i = 0; i < TD; i++) {
    fprintf(f, "'%c' ", out[i]);
    for (int j = 0; j < te; j++) fprintf(f, " %8.5f", w[i * TE + j]);
    fprintf(f, "\n");
  }
  fclose(f);
  snprintf(path, sizeof path, "%s.svg", prefix);
  f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  const int cell = 36, x0 = 48, y0 = 64;
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "font-family=\"monospace\" font-size=\"16\">\n",
          x0 + te * cell + 16, y0 + TD * cell + 16);
  fprintf(f, "<text x=\"%d\" y=\"20\">additive attention: \"%s\" -&gt; \"%s\"</text>\n", 8, in,
          out);
  for (int j = 0; j < te; j++)
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%c</text>\n",
            x0 + j * cell + cell / 2, y0 - 10, in[j] == ' ' ? '_' : in[j]);
  for (int i = 0; i < TD; i++) {
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%c</text>\n", x0 / 2,
            y0 + i * cell + cell / 2 + 6, out[i]);
    for (int j = 0; j < te; j++) {
      const float v = w[i * TE + j] < 0 ? 0 : w[i * TE + j] > 1 ? 1 : w[i * TE + j];
      const int shade = (int)(255.0f * (1.0f - v)); /* white (0) to dark blue (1) */
      fprintf(f,
              "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" "
              "stroke=\"#ccc\"><title>%.4f</title></rect>\n",
              x0 + j * cell, y0 + i * cell, cell, cell, shade, shade, 128 + shade / 2,
              w[i * TE + j]);
    }
  }
  fprintf(f, "</svg>\n");
  fclose(f);
}

int main(int argc, char **argv) {
  const char *prefix = argc > 1 ? argv[1] : "attention";
  if (dlk_context_create(&ctx, NULL) != DLK_OK) {
    fprintf(stderr, "%s\n", dlk_context_last_error(NULL));
    return 1;
  }
  unsigned seed = 12345, data_seed = 777, eval_seed = 99;
  model md;
  model_init(&md, &seed);
  param *all[16];
  const int np = model_params(&md, all);

  /* Training tensors. */
  dlk_rnn_params rp = {
      .mode = DLK_RNN_GRU, .hidden_size = H, .num_layers = 1, .batch_first = 1, .training = 1};
  dlk_tensor enc_ids = tensor(DLK_I32, 2, (int64_t[]){B, TE}),
             lens = tensor(DLK_I32, 1, (int64_t[]){B});
  dlk_tensor dec_ids = tensor(DLK_I32, 2, (int64_t[]){B, TD}),
             tgt = tensor(DLK_I32, 1, (int64_t[]){B * TD});
  dlk_tensor xe = tensor(DLK_F32, 3, (int64_t[]){B, TE, E}),
             xd = tensor(DLK_F32, 3, (int64_t[]){B, TD, E});
  dlk_tensor eo = tensor(DLK_F32, 3, (int64_t[]){B, TE, H}),
             hn = tensor(DLK_F32, 3, (int64_t[]){1, B, H});
  dlk_tensor yd = tensor(DLK_F32, 3, (int64_t[]){B, TD, H}),
             wts = tensor(DLK_F32, 3, (int64_t[]){B, TD, TE});
  dlk_tensor cat = tensor(DLK_F32, 2, (int64_t[]){B * TD, 2 * H}),
             dcat = tensor(DLK_F32, 2, (int64_t[]){B * TD, 2 * H});
  dlk_tensor logits = tensor(DLK_F32, 2, (int64_t[]){B * TD, V_OUT}),
             dlogits = tensor(DLK_F32, 2, (int64_t[]){B * TD, V_OUT});
  dlk_tensor loss = tensor(DLK_F32, 1, (int64_t[]){1}), dloss = tensor(DLK_F32, 1, (int64_t[]){1});
  dlk_tensor denc = tensor(DLK_F32, 3, (int64_t[]){B, TE, H}),
             ddec = tensor(DLK_F32, 3, (int64_t[]){B, TD, H});
  dlk_tensor dxe = tensor(DLK_F32, 3, (int64_t[]){B, TE, E}),
             dxd = tensor(DLK_F32, 3, (int64_t[]){B, TD, E});
  dlk_tensor dh0 = tensor(DLK_F32, 3, (int64_t[]){1, B, H}),
             eye = tensor(DLK_F32, 2, (int64_t[]){H, H});
  /* [decoder output; context] side by side in cat (and their gradients in dcat) */
  dlk_tensor cat_dec = cols3(&cat, B, TD, 0, H), cat_ctx = cols3(&cat, B, TD, H, H);
  dlk_tensor dcat_dec = cols3(&dcat, B, TD, 0, H), dcat_ctx = cols3(&dcat, B, TD, H, H);
  size_t enc_bytes = 0, dec_bytes = 0;
  TRY(dlk_rnn_reserve_size(ctx, &rp, &xe, &enc_bytes));
  TRY(dlk_rnn_reserve_size(ctx, &rp, &xd, &dec_bytes));
  dlk_tensor enc_res = tensor(DLK_U8, 1, (int64_t[]){(int64_t)enc_bytes});
  dlk_tensor dec_res = tensor(DLK_U8, 1, (int64_t[]){(int64_t)dec_bytes});
  {
    const float one = 1.0f;
    float id[H * H] = {0};
    for (int i = 0; i < H; i++) id[i * H + i] = 1.0f;
    TRY(dlk_tensor_write(ctx, &dloss, &one, sizeof one));
    TRY(dlk_tensor_write(ctx, &eye, id, sizeof id));
  }
  /* Held-out dates. */
  dlk_tensor ev_ids = tensor(DLK_I32, 2, (int64_t[]){NEVAL, TE}),
             ev_lens = tensor(DLK_I32, 1, (int64_t[]){NEVAL});
  static int32_t h_eids[NEVAL * TE], h_elens[NEVAL], h_edin[NEVAL * TD], h_etgt[NEVAL * TD],
      h_pred[NEVAL * TD];
  batch_ids(&eval_seed, 1, NEVAL, h_eids, h_elens, h_edin, h_etgt);
  TRY(dlk_tensor_write(ctx, &ev_ids, h_eids, sizeof h_eids));
  TRY(dlk_tensor_write(ctx, &ev_lens, h_elens, sizeof h_elens));

  const dlk_linear_params lin = {DLK_ACT_NONE};
  const dlk_embedding_params pad = {0}, nopad = {-1};
  const dlk_gemm_params plus = {1.0, 1.0};
  double acc = 0;
  static int32_t h_ids[B * TE], h_lens[B], h_din[B * TD], h_tgt[B * TD];
  for (int step = 1; step <= STEPS; step++) {
    batch_ids(&data_seed, 0, B, h_ids, h_lens, h_din, h_tgt);
    TRY(dlk_tensor_write(ctx, &enc_ids, h_ids, sizeof h_ids));
    TRY(dlk_tensor_write(ctx, &lens, h_lens, sizeof h_lens));
    TRY(dlk_tensor_write(ctx, &dec_ids, h_din, sizeof h_din));
    TRY(dlk_tensor_write(ctx, &tgt, h_tgt, sizeof h_tgt));
    /* forward */
    TRY(dlk_embedding_forward(ctx, &pad, &enc_ids, &md.emb_in.w, &xe));
    TRY(dlk_rnn_forward(ctx, &rp, &md.enc_w, &xe, &lens, NULL, NULL, &eo, &hn, NULL, &enc_res));
    TRY(dlk_embedding_forward(ctx, &nopad, &dec_ids, &md.emb_dec.w, &xd));
    TRY(dlk_rnn_forward(ctx, &rp, &md.dec_w, &xd, NULL, &hn, NULL, &yd, NULL, NULL, &dec_res));
    TRY(dlk_additive_attention_forward(ctx, &eo, &yd, &md.w_a.w, &md.u_a.w, &md.v_a.w, &lens,
                                       &cat_ctx, &wts));
    TRY(dlk_tensor_copy(ctx, &cat_dec, &yd));
    TRY(dlk_linear_forward(ctx, &lin, &cat, &md.out_w.w, &md.out_b.w, &logits, NULL));
    TRY(dlk_cross_entropy_forward(ctx, NULL, &logits, &tgt, &loss, NULL));
    /* backward: dense, attention (dcontext), then the decoder output's two gradients summed
       (the dense layer's columns plus the attention's ddec: a GEMM with the identity and
       beta 1), the decoder GRU, the encoder GRU (its outputs' gradient from the attention,
       its final state's from the decoder), the embeddings */
    TRY(dlk_cross_entropy_backward(ctx, NULL, &logits, &tgt, &dloss, &dlogits));
    TRY(dlk_linear_backward(ctx, &lin, &cat, &md.out_w.w, NULL, &dlogits, &dcat, &md.out_w.g,
                            &md.out_b.g));
    TRY(dlk_additive_attention_backward(ctx, &eo, &yd, &md.w_a.w, &md.u_a.w, &md.v_a.w, &lens, &wts,
                                        &dcat_ctx, NULL, &denc, &ddec, &md.w_a.g, &md.u_a.g,
                                        &md.v_a.g));
    TRY(dlk_gemm(ctx, &plus, &dcat_dec, &eye, &ddec));
    for (int j = 0; j < 4; j++) { /* the GRUs' weight gradients accumulate */
      TRY(dlk_tensor_zero(ctx, &md.enc[j].g));
      TRY(dlk_tensor_zero(ctx, &md.dec[j].g));
    }
    TRY(dlk_rnn_backward(ctx, &rp, &md.dec_w, &xd, NULL, &hn, NULL, &yd, &dec_res, &ddec, NULL,
                         NULL, &dxd, &dh0, NULL, &md.dec_g));
    TRY(dlk_rnn_backward(ctx, &rp, &md.enc_w, &xe, &lens, NULL, NULL, &eo, &enc_res, &denc, &dh0,
                         NULL, &dxe, NULL, NULL, &md.enc_g));
    TRY(dlk_embedding_backward(ctx, &pad, &enc_ids, &dxe, &md.emb_in.g));
    TRY(dlk_embedding_backward(ctx, &nopad, &dec_ids, &dxd, &md.emb_dec.g));
    const dlk_adam_params ap = {5e-3, 0.9, 0.999, 1e-8, 0.0, 0, step};
    for (int i = 0; i < np; i++)
      TRY(dlk_adam_step(ctx, &ap, &all[i]->w, &all[i]->g, &all[i]->m, &all[i]->v));
    if (step == 1 || step % 100 == 0) {
      float lv;
      TRY(dlk_tensor_read(ctx, &loss, &lv, sizeof lv));
      greedy(&md, NEVAL, &ev_ids, &ev_lens, h_pred, NULL);
      int exact = 0;
      for (int b = 0; b < NEVAL; b++)
        exact += memcmp(h_pred + b * TD, h_etgt + b * TD, sizeof(int32_t) * TD) == 0;
      acc = (double)exact / NEVAL;
      printf("step %4d  loss %.4f  held-out exact match %5.1f%%\n", step, lv, 100.0 * acc);
    }
  }

  /* One date decoded step by step, its attention matrix written out. */
  const char *date = "24 Nov 2026";
  int32_t one_ids[TE] = {0}, one_len = (int32_t)strlen(date), one_pred[TD];
  for (int j = 0; j < one_len; j++) one_ids[j] = in_id(date[j]);
  dlk_tensor o_ids = tensor(DLK_I32, 2, (int64_t[]){1, TE}),
             o_len = tensor(DLK_I32, 1, (int64_t[]){1});
  TRY(dlk_tensor_write(ctx, &o_ids, one_ids, sizeof one_ids));
  TRY(dlk_tensor_write(ctx, &o_len, &one_len, sizeof one_len));
  float attn[TD * TE];
  greedy(&md, 1, &o_ids, &o_len, one_pred, attn);
  char out[TD + 1];
  for (int i = 0; i < TD; i++) out[i] = OUT_CHARS[one_pred[i]];
  out[TD] = '\0';
  printf("\n\"%s\" -> \"%s\"; attention (row: output character, column: input character):\n    ",
         date, out);
  for (int j = 0; j < one_len; j++) printf("  %c  ", date[j]);
  printf("\n");
  for (int i = 0; i < TD; i++) {
    printf("%c  ", out[i]);
    for (int j = 0; j < one_len; j++) printf(" %.2f", attn[i * TE + j]);
    printf("\n");
  }
  write_attention(prefix, date, out, attn);
  printf("wrote %s.txt and %s.svg\n", prefix, prefix);

  dlk_tensor *ts[] = {&enc_ids, &lens,    &dec_ids, &tgt,    &xe,      &xd,     &eo,
                      &hn,      &yd,      &wts,     &cat,    &dcat,    &logits, &dlogits,
                      &loss,    &dloss,   &denc,    &ddec,   &dxe,     &dxd,    &dh0,
                      &eye,     &enc_res, &dec_res, &ev_ids, &ev_lens, &o_ids,  &o_len};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) dlk_tensor_free(ctx, ts[i]);
  for (int i = 0; i < np; i++) {
    dlk_tensor_free(ctx, &all[i]->w), dlk_tensor_free(ctx, &all[i]->g);
    dlk_tensor_free(ctx, &all[i]->m), dlk_tensor_free(ctx, &all[i]->v);
  }
  dlk_context_destroy(ctx);
  /* chance is 11^-10: a model that learnt the rewrite decodes most held-out dates */
  return acc >= 0.5 ? 0 : 1;
}
