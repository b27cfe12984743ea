#pragma once
// A validated model: the mapped GGUF file, its hyperparameters and every tensor resolved. Opening a model parses and
// checks everything that can be checked without a device, so that every later step (plan, load, engines) works on
// typed values only.
#include <filesystem>
#include <memory>

#include "gguf/file.h"
#include "model/config.h"
#include "model/recipe.h"
#include "model/weights.h"

namespace orcd::model {

struct Model {
    // Shared so that the loaded model and an embedding application's handle can both keep the mapping alive; the
    // TensorRef::data views point into it.
    std::shared_ptr<const gguf::File> file;
    Config config;
    ModelWeights weights;
    Recipe recipe;  // what each layer computes (model/recipe.h); both backends run this description
};

// Opens, parses and validates. Errors: every gguf::File::open error, then those of load_config and resolve_weights.
Model open_model(const std::filesystem::path& path);
Model describe_model(std::shared_ptr<const gguf::File> file);

}  // namespace orcd::model
