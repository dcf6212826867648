"""The job model: what a job is and how it moves, as rules over a store transaction.

States and the one function that changes a job's status (states.py), containers and their environment,
task definitions (ECS tasks, EKS pods), attempts, arrays, multi-node jobs, SageMaker training, and intents
(cancel, terminate), resource kinds and statuses (resources.py) and the capacity rules both the API
and the scheduler read (compute_capacity.py, consumables.py). The rule: model/ imports nothing from service/, scheduler/, the HTTP layer or the
CLI, and from executors/ only the contract (batchemu.executors); it reads and writes through the
transaction it is given (training.py alone writes files: the folders a training container mounts).
"""
