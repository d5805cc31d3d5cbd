"""makemore 'backprop ninja': an MLP on characters with batch norm, every manual gradient of the exercise."""
import torch
import torch.nn.functional as F

# A. Karpathy, makemore part 4 ("Building makemore Part 4: Becoming a Backprop Ninja", 2022):
# the exercise's network and the manual backward pass of exercises 1-3, as the lecture writes
# them.  Read by tracegrad, never run.  One change: dC is accumulated with index_add_ (a
# vectorised form posted for the exercise) instead of the lecture's loop over every example,
# which cannot be unrolled for a symbolic batch size n.
SOURCE = ("A. Karpathy, makemore part 4, 'Becoming a Backprop Ninja' (2022): exercise 1 (every "
          "intermediate), exercise 2 (dlogits in one go), exercise 3 (dhprebn in one go)")

block_size = 3
SHAPES = {"Xb": "n, block_size", "Yb": "n", "C": "vocab_size, n_embd",
          "W1": "block_size * n_embd, n_hidden", "b1": "n_hidden", "W2": "n_hidden, vocab_size",
          "b2": "vocab_size", "bngain": "1, n_hidden", "bnbias": "1, n_hidden"}
DATA = {"Xb": "labels of vocab_size", "Yb": "labels of vocab_size"}
SIZES = {"n": 8, "vocab_size": 6, "n_embd": 3, "n_hidden": 5}
MEANING = {"dlogits_fast": "grad(logits)", "dhprebn_fast": "grad(hprebn)"}


def forward(Xb, Yb, C, W1, b1, W2, b2, bngain, bnbias):
    emb = C[Xb]  # embed the characters into vectors
    embcat = emb.view(emb.shape[0], -1)  # concatenate the vectors
    # Linear layer 1
    hprebn = embcat @ W1 + b1  # hidden layer pre-activation
    # BatchNorm layer
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)  # note: Bessel's correction (dividing by n-1, not n)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    # Non-linearity
    h = torch.tanh(hpreact)  # hidden layer
    # Linear layer 2
    logits = h @ W2 + b2  # output layer
    # cross entropy loss (same as F.cross_entropy(logits, Yb))
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes  # subtract max for numerical stability
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1  # if I use (1.0 / counts_sum) instead then I can't get backprop to be bit exact...
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    return loss


def backward(Xb, Yb, C, W1, b1, W2, b2, bngain, bnbias):
    # Exercise 1: backprop through the whole thing manually
    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
    dcounts += torch.ones_like(counts) * dcounts_sum
    dnorm_logits = counts * dcounts
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    dC.index_add_(0, Xb.view(-1), demb.view(-1, n_embd))

    # Exercise 2: backprop through cross_entropy but all in one go
    dlogits_fast = F.softmax(logits, 1)
    dlogits_fast[range(n), Yb] -= 1
    dlogits_fast /= n

    # Exercise 3: backprop through batchnorm but all in one go
    dhprebn_fast = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
