// Everything in nn/ in one include.
#pragma once
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/pool2d.h"
#include "nn/sequential.h"
#include "nn/sync_batchnorm.h"
